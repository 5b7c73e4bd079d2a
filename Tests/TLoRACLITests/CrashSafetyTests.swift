import Testing
import TLoRAFormat
import TLoRAInterop
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Writers never leave a broken output: killed at any moment, the output path holds nothing or a
/// complete, verifiable result; a full disk gives a clean error and no partial output.
@Suite(.serialized) struct CrashSafetyTests {
    /// A Llama-shaped base of `layers` layers (hidden 512, f32) in 3 shards, and a LoRA adapter for
    /// its q/v projections: big enough that a merge takes a noticeable fraction of a second.
    static func workload(_ dir: TemporaryDirectory, layers: Int = 12) throws -> (base: String, adapter: String) {
        var g = SeededGenerator(seed: 99)
        let base = dir.file("base")
        makeDirectory(base)
        var shards: [[(name: String, tensor: StoredTensor)]] = [[], [], []]
        var weightMap = JSONObject()
        for l in 0..<layers {
            for p in ["q_proj", "k_proj", "v_proj", "o_proj"] {
                let name = "model.layers.\(l).self_attn.\(p).weight"
                let t = StoredTensor((0..<(512 * 512)).map { _ in Float(g.gaussian() * 0.02) }, shape: [512, 512])
                shards[l % 3].append((name, t))
                weightMap[name] = JSONValue("model-0000\(l % 3 + 1)-of-00003.safetensors")
            }
        }
        for (i, s) in shards.enumerated() {
            try SafetensorsWriter.write(s, metadata: [("format", "pt")], to: base + "/model-0000\(i + 1)-of-00003.safetensors", overwrite: false)
        }
        let index = JSONObject([("metadata", .object(JSONObject([("total_size", JSONValue(layers * 4 * 512 * 512 * 4))]))), ("weight_map", .object(weightMap))])
        TestFiles.write(base + "/model.safetensors.index.json", JSONWriter.bytes(.object(index)))
        TestFiles.write(base + "/config.json", Array(#"{"model_type":"llama","num_attention_heads":8,"num_key_value_heads":8}"#.utf8))
        var modules: [AdapterModule] = []
        for l in 0..<layers {
            for p in ["q_proj", "v_proj"] {
                modules.append(AdapterModule(name: "model.layers.\(l).self_attn.\(p)", outFeatures: 512, inFeatures: 512, scale: 2,
                                             update: .lowRank(a: StoredTensor((0..<(16 * 512)).map { _ in Float(g.gaussian()) }, shape: [16, 512]),
                                                              b: StoredTensor((0..<(512 * 16)).map { _ in Float(g.gaussian() * 0.01) }, shape: [512, 16]))))
            }
        }
        let adapter = dir.file("adapter.tlora")
        try ContainerWriter.write(Adapter(modules: modules), to: adapter, options: WriteOptions(level: 1))
        return (base, adapter)
    }

    /// XXH64 of every file in a directory (or of a file).
    static func fingerprint(_ path: String) -> [String: UInt64] {
        if pathKind(path) == .file { return [path: XXH64.hash(TestFiles.read(path))] }
        var out: [String: UInt64] = [:]
        for name in (try? directoryEntries(path)) ?? [] { out.merge(fingerprint(joinPath(path, name))) { a, _ in a } }
        return out
    }

    /// Starts `tlora args`, kills it with SIGKILL after `delay` seconds (if still running).
    static func killAfter(_ delay: Double, _ args: [String]) throws -> Bool {
        var pid: pid_t = 0
        let argv = ([CommandRunner.executable] + args).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        defer { posix_spawn_file_actions_destroy(&actions) }
        guard posix_spawn(&pid, argv[0]!, &actions, nil, argv, environ) == 0 else { throw CrashTestError.spawn }  // safe: argv[0] is set
        usleep(useconds_t(delay * 1e6))
        let killed = kill(pid, SIGKILL) == 0
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        return killed && (status & 0x7F) == SIGKILL
    }

    enum CrashTestError: Error { case spawn }

    @Test func sigkillDuringMergeLeavesNothingOrAWholeCheckpoint() throws {
        let dir = TemporaryDirectory()
        let (base, adapter) = try Self.workload(dir)
        // The uninterrupted result, for comparison.
        let reference = dir.file("reference")
        let ok = try CommandRunner.tlora(["merge", adapter, "--base", base, "-o", reference])
        #expect(ok.status == 0, "\(ok.stderr)")
        let expected = Self.fingerprint(reference).mapKeys { $0.replacingFirst(reference, with: "") }
        let inputs = Self.fingerprint(base).merging(Self.fingerprint(adapter)) { a, _ in a }
        var g = SeededGenerator(seed: 5)
        var killedMidway = 0, completed = 0
        for i in 0..<12 {
            let out = dir.file("merged-\(i)")
            if try Self.killAfter(Double.random(in: 0.0...0.25, using: &g), ["merge", adapter, "--base", base, "-o", out]) { killedMidway += 1 }
            switch pathKind(out) {
            case .missing: break
            case .directory:
                completed += 1
                #expect(Self.fingerprint(out).mapKeys { $0.replacingFirst(out, with: "") } == expected, "run \(i): incomplete or different output")
            default: Issue.record("run \(i): \(out) is neither missing nor a directory")
            }
        }
        #expect(killedMidway > 0, "no run was interrupted: the workload is too small to test anything")
        #expect(Self.fingerprint(base).merging(Self.fingerprint(adapter)) { a, _ in a } == inputs, "inputs changed")
        _ = completed
    }

    @Test func sigkillDuringConversionLeavesNothingOrAVerifiableFile() throws {
        let dir = TemporaryDirectory()
        let (_, adapter) = try Self.workload(dir, layers: 12)
        let before = Self.fingerprint(adapter)
        var g = SeededGenerator(seed: 6)
        var killedMidway = 0
        for i in 0..<8 {
            let out = dir.file("tt-\(i).tlora")
            if try Self.killAfter(Double.random(in: 0.0...0.2, using: &g), ["convert", "dense-to-tt", adapter, "-o", out, "--max-rel-error", "0.01"]) {
                killedMidway += 1
            }
            if pathKind(out) != .missing {
                #expect(TLoRAFile.verify(path: out).isIntact, "run \(i): a file exists but does not verify")
            }
        }
        #expect(killedMidway > 0, "no run was interrupted")
        #expect(Self.fingerprint(adapter) == before)
    }

    /// A 1 MiB tmpfs (needs root to mount; CI runs as root).
    static func smallDisk(_ dir: TemporaryDirectory) -> String? {
        let mnt = dir.file("small-disk")
        makeDirectory(mnt)
        guard geteuid() == 0, mount("tmpfs", mnt, "tmpfs", 0, "size=1m") == 0 else { return nil }
        return mnt
    }

    @Test(.enabled(if: geteuid() == 0, "mounting a small tmpfs needs root"))
    func fullDiskGivesACleanErrorAndNoOutput() throws {
        let dir = TemporaryDirectory()
        guard let mnt = Self.smallDisk(dir) else { Issue.record("could not mount a 1 MiB tmpfs"); return }
        defer { umount(mnt) }
        // The trained adapter compresses to ~2 MiB: the write runs out of space midway.
        let r = try CommandRunner.tlora(["convert", "import", Fixtures.peft("minilm-trained"), "-o", mnt + "/out.tlora"])
        #expect(r.status == 1)
        #expect(r.stderr.contains("no space left on device"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1)
        #expect((try? directoryEntries(mnt)) == [], "left behind: \((try? directoryEntries(mnt)) ?? [])")
        // The merge's unbuffered writer (O_DIRECT where tmpfs takes it) running out midway: the same.
        do {
            let direct = try AtomicFileWriter(destination: mnt + "/direct.bin", overwrite: false, unbuffered: true)
            let error = #expect(throws: IOError.self) {
                try direct.write([UInt8](repeating: 1, count: 3 << 20))
                try direct.commit()
            }
            #expect(error?.code == .noSpace, "\(String(describing: error))")
        }
        #expect((try? directoryEntries(mnt)) == [], "left behind: \((try? directoryEntries(mnt)) ?? [])")
        // A merge checks the free space before writing anything.
        let m = try CommandRunner.tlora(["merge", Fixtures.peft("llama-lora"), "--base", Fixtures.model("tiny-llama"), "-o", mnt + "/merged"])
        #expect(m.status == 0 || m.stderr.contains("space"), "\(m.stderr)")
        let (base, adapter) = try Self.workload(dir, layers: 3)
        let big = try CommandRunner.tlora(["merge", adapter, "--base", base, "-o", mnt + "/merged-big"])
        #expect(big.status == 1)
        #expect(big.stderr.contains("not enough disk space"), "\(big.stderr)")
        #expect(pathKind(mnt + "/merged-big") == .missing)
    }
}

extension Dictionary {
    func mapKeys<K: Hashable>(_ f: (Key) -> K) -> [K: Value] {
        Dictionary<K, Value>(uniqueKeysWithValues: map { (f($0.key), $0.value) })
    }
}
