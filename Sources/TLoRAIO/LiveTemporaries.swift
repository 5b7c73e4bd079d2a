#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// The hidden temporaries this process is writing, so that SIGINT, SIGTERM and SIGHUP can remove
/// them before the process ends (`TerminationCleanup`), and the moves that turn a temporary into an
/// output never interleave with that cleanup.
///
/// Writers register a path *before* creating it and unregister it once it is moved into place or
/// removed. After a termination signal has been received, a thread that tries to register or commit
/// a temporary is parked until the process ends, so nothing new appears while (or after) the
/// temporaries are removed.
public enum LiveTemporaries {
    struct State {
        var paths: Set<String> = []
        /// An output (not a file inside a temporary directory) has been moved into place.
        var committedOutput = false
        /// A termination signal is being handled: no new temporaries, no more commits.
        var terminating = false
    }

    static let state = Mutex(State())

    /// Records `path` as a temporary this process is about to create.
    public static func register(_ path: String) {
        let stopping = state.withLock { s -> Bool in
            if s.terminating { return true }
            s.paths.insert(path)
            return false
        }
        if stopping { parkUntilExit() }
    }

    /// Forgets `path` (it was removed, or moved into place outside `commit`).
    public static func unregister(_ path: String) {
        state.withLock { _ = $0.paths.remove(path) }
    }

    /// Runs `move`, which turns the temporary `path` into the output `destination`, so that a
    /// termination signal is handled entirely before it (the temporary is removed and the output
    /// never appears) or entirely after it (the output is complete). `path` is unregistered when
    /// `move` succeeds; returns what `move` returns.
    @discardableResult
    public static func commit(_ path: String, to destination: String, _ move: () throws -> Bool) throws -> Bool {
        // The lock is held across the move (a rename: microseconds) so cleanup cannot run halfway.
        var failure: (any Error)? = nil
        let outcome: Bool? = state.withLock { s in
            if s.terminating { return nil }
            do {
                let value = try move()
                s.paths.remove(path)
                // A file inside a live temporary directory is not an output yet.
                if !s.paths.contains(where: { destination.hasPrefix($0 + "/") }) { s.committedOutput = true }
                return value
            } catch {
                failure = error
                return false
            }
        }
        if let failure { throw failure }
        guard let outcome else { parkUntilExit() }
        return outcome
    }

    /// What the signal waiter does about a termination signal.
    enum Response { case terminate, finishNormally }

    /// Stops new temporaries and commits, and removes every registered temporary. When nothing is
    /// being written and an output is already in place, the command has done its work and is only
    /// reporting: it is left to finish (exit 0) rather than killed after the fact.
    static func handleTermination() -> Response {
        let paths: [String]? = state.withLock { s in
            if s.paths.isEmpty && s.committedOutput { return nil }
            s.terminating = true
            return Array(s.paths)
        }
        guard let paths else { return .finishNormally }
        // Deepest first: files inside a temporary directory before the directory.
        for path in paths.sorted(by: { $0.count > $1.count }) { removeTemporary(path) }
        return .terminate
    }

    /// Removes a temporary, retrying briefly: a worker that passed its registration just before the
    /// signal may still create one entry inside a temporary directory.
    static func removeTemporary(_ path: String) {
        for _ in 0..<50 {
            removeTree(path)
            if pathStatus(path) == nil { return }
            usleep(2000)
        }
    }

    /// The registered paths (tests).
    public static var registered: Set<String> { state.withLock { $0.paths } }

    static func parkUntilExit() -> Never {
        while true { sleep(3600) }
    }
}
