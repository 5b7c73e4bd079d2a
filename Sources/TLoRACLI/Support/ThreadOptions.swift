import ArgumentParser

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// `--threads N`: the worker threads of this run (the same as `TLORA_THREADS=N`, which it overrides).
struct ThreadOptions: ParsableArguments {
    @Option(help: "Worker threads (default: TLORA_THREADS, else one per core).")
    var threads: Int?

    func validate() throws {
        if let t = threads, t < 1 { throw ValidationError("--threads must be at least 1") }
    }

    /// Sets the limit before any work starts (the kernels read it once, at their first use).
    func apply() {
        if let t = threads { setenv("TLORA_THREADS", String(t), 1) }
    }
}

/// The environment variables tlora reads, checked before anything runs: a typo must not be
/// ignored silently (docs/CLI.md, "Conventions").
enum EnvironmentCheck {
    /// The first problem, worded for an `Error:` line, or nil.
    static func problem() -> String? {
        func value(_ name: String) -> String? {
            guard let v = getenv(name) else { return nil }
            let s = String(cString: v)
            return s.isEmpty ? nil : s
        }
        if let t = value("TLORA_THREADS"), (Int(t) ?? 0) < 1 {
            return "TLORA_THREADS=\(t): must be a whole number of threads, at least 1"
        }
        if let s = value("TLORA_SIMD"), !["portable", "avx2", "avx512"].contains(s) {
            return "TLORA_SIMD=\(s): must be portable, avx2 or avx512"
        }
        if let d = value("TLORA_DISABLE_SIMD"), !["0", "1"].contains(d) {
            return "TLORA_DISABLE_SIMD=\(d): must be 1 (portable kernels only) or 0"
        }
        return nil
    }
}
