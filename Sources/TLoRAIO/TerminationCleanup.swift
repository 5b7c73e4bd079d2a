#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// SIGINT, SIGTERM and SIGHUP remove the temporaries the process is writing, then end it with the
/// same signal (so a shell sees 130, 143 or 129, as for any interrupted program).
///
/// The signals are blocked in every thread and taken by one waiting thread (`sigwait`), which may
/// take locks and remove files — a classic signal handler may do neither. `install()` must run
/// before any other thread starts, so every thread inherits the blocked mask. A signal the parent
/// set to be ignored (`nohup`, a background job of a non-interactive shell) stays ignored.
public enum TerminationCleanup {
    public static let signals: [Int32] = [SIGINT, SIGTERM, SIGHUP]

    public static func install() {
        var set = sigset_t()
        sigemptyset(&set)
        var any = false
        for sig in signals {
            var current = sigaction()
            guard sigaction(sig, nil, &current) == 0 else { continue }
            if isIgnored(current) { continue }
            sigaddset(&set, sig)
            any = true
        }
        guard any else { return }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        waitedSignals = set
        var thread = pthread_t()
        _ = pthread_create(&thread, nil, { _ in TerminationCleanup.wait() }, nil)
    }

    nonisolated(unsafe) private static var waitedSignals = sigset_t()  // written once, before the waiter starts

    private static func wait() -> Never {
        var set = waitedSignals
        while true {
            var sig: Int32 = 0
            guard sigwait(&set, &sig) == 0 else { continue }
            if LiveTemporaries.handleTermination() == .finishNormally { continue }
            // End with the signal itself: default action, unblocked in this thread, raised here.
            signal(sig, SIG_DFL)
            var one = sigset_t()
            sigemptyset(&one)
            sigaddset(&one, sig)
            pthread_sigmask(SIG_UNBLOCK, &one, nil)
            raise(sig)
            _exit(128 + sig)
        }
    }

    private static func isIgnored(_ action: sigaction) -> Bool {
        #if canImport(Glibc)
        return unsafeBitCast(action.__sigaction_handler.sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
        #else
        return unsafeBitCast(action.__sigaction_u.__sa_handler, to: Int.self) == unsafeBitCast(SIG_IGN, to: Int.self)
        #endif
    }
}
