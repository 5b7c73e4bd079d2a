import CTLoRAKernels

extension GEMM {
    /// The families of GEMM micro-kernels; each needs the instruction sets of the ones before it.
    ///
    /// `active` is what `multiply` uses by default: the best this CPU supports, lowered by the
    /// environment before the first use (`TLORA_SIMD=portable|avx2|avx512`, `TLORA_DISABLE_SIMD=1`).
    /// Passing a kernel explicitly lets one process (the tests) run every path the CPU supports.
    public enum Kernel: Int32, CaseIterable, Sendable, CustomStringConvertible {
        /// Baseline x86-64 (or any CPU): never executes an AVX instruction.
        case portable = 0
        /// AVX2 + FMA + F16C.
        case avx2 = 1
        /// AVX-512 F/BW/DQ/VL.
        case avx512 = 2

        /// The kernels `multiply` uses when none is given.
        public static var active: Kernel { Kernel(rawValue: tlora_simd_level()) ?? .portable }

        /// Every kernel this CPU can run, portable first.
        public static var supported: [Kernel] { allCases.filter(\.isSupported) }

        /// Whether this CPU (and OS) can run these kernels, whatever the environment says.
        public var isSupported: Bool { tlora_simd_supported(rawValue) != 0 }

        public var description: String {
            switch self {
            case .portable: "portable"
            case .avx2: "avx2"
            case .avx512: "avx512"
            }
        }
    }
}
