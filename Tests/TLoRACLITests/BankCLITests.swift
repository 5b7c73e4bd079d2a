import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAInterop
import TLoRAModel
import _TLoRATestSupport

/// `tlora bank build|get|add`, `inspect` and `merge --member` on banks.
@Suite struct BankCLITests {
    /// Four members of one base written as `.tlora` files `m0.tlora` … (a PEFT-free setup).
    static func members(_ dir: TemporaryDirectory, count: Int = 4, seed: UInt64 = 31, groups: Int = 1) throws -> [String] {
        let adapters = SampleAdapters.bankMembers(seed: seed, members: count, modules: 2, out: 24, in: 16, rank: 3, shared: 4, noise: 0.2, groups: groups)
        return try adapters.enumerated().map { i, a in
            let path = dir.file("m\(i).tlora")
            try ContainerWriter.write(a, to: path)
            return path
        }
    }

    @Test func buildInspectGetRoundTrip() throws {
        let dir = TemporaryDirectory()
        let paths = try Self.members(dir)
        let bank = dir.file("bank.tlora")
        let build = try CommandRunner.tlora(["bank", "build", paths[0], paths[1], "named=\(paths[2])", paths[3], "-o", bank, "--max-rel-error", "0.05"])
        #expect(build.status == 0, "\(build.stderr)")
        #expect(build.stdout.contains("worst member error") && build.stdout.contains("bound 5.00e-02 per member and module"), "\(build.stdout)")
        for name in ["m0", "m1", "named", "m3"] { #expect(build.stdout.contains(name), "\(name)") }

        let inspect = try CommandRunner.tlora(["inspect", bank])
        #expect(inspect.status == 0, "\(inspect.stderr)")
        #expect(inspect.stdout.contains("adapter bank of 4 members"), "\(inspect.stdout)")
        #expect(inspect.stdout.contains("vs the members' own"), "\(inspect.stdout)")
        let json = try JSONParser.parse(try CommandRunner.tlora(["inspect", bank, "--json"]).stdout)
        #expect(json["bank"]?["members"]?.arrayValue?.map { $0["name"]?.stringValue } == ["m0", "m1", "named", "m3"])
        #expect((json["bank"]?["source_bytes"]?.intValue ?? 0) > 0)

        // get as .tlora and PEFT: verify --against the original reports the recorded error.
        let out = dir.file("named.tlora")
        let get = try CommandRunner.tlora(["bank", "get", bank, "--member", "named", "-o", out])
        #expect(get.status == 0, "\(get.stderr)")
        let verify = try CommandRunner.tlora(["verify", out, "--against", paths[2], "--max-rel-error", "0.05"])
        #expect(verify.status == 0, "\(verify.stdout)\(verify.stderr)")
        let peft = dir.file("named-peft")
        #expect(try CommandRunner.tlora(["bank", "get", bank, "--member", "named", "-o", peft, "--format", "peft"]).status == 0)
        let fromPEFT = try PEFTReader.read(directory: peft)
        #expect(fromPEFT.modules.count == 2)
        #expect(try CommandRunner.tlora(["verify", peft, "--against", paths[2], "--max-rel-error", "0.05"]).status == 0)
        // --json: one document with the member's ranks and its error against its own update.
        let getJSON = try CommandRunner.tlora(["bank", "get", bank, "--member", "m1", "-o", dir.file("m1-got.tlora"), "--json"])
        #expect(getJSON.status == 0, "\(getJSON.stderr)")
        let doc = try JSONParser.parse(getJSON.stdout)
        #expect(doc["member"]?.stringValue == "m1" && doc["modules"]?.intValue == 2, "\(getJSON.stdout)")
        #expect((doc["worst_rel_error"]?.doubleValue ?? 1) <= 0.05, "\(getJSON.stdout)")
    }

    @Test func losslessMemberIsExact() throws {
        let dir = TemporaryDirectory()
        let paths = try Self.members(dir)
        let bank = dir.file("bank.tlora")
        #expect(try CommandRunner.tlora(["bank", "build"] + paths + ["-o", bank]).status == 0)
        let out = dir.file("m1-out.tlora")
        #expect(try CommandRunner.tlora(["bank", "get", bank, "--member", "m1", "-o", out]).status == 0)
        let verify = try CommandRunner.tlora(["verify", out, "--against", paths[1], "--max-rel-error", "1e-6"])
        #expect(verify.status == 0, "\(verify.stdout)")
    }

    @Test func mergeTakesAMember() throws {
        let dir = TemporaryDirectory()
        // Members of tiny-llama's q_proj shape (64×64).
        let adapters = (0..<3).map { SampleAdapters.lora(seed: UInt64(40 + $0), modules: 2, out: 64, in: 64, rank: 2) }
        let paths = try adapters.enumerated().map { i, a -> String in
            let p = dir.file("a\(i).tlora")
            try ContainerWriter.write(a, to: p)
            return p
        }
        let bank = dir.file("bank.tlora")
        #expect(try CommandRunner.tlora(["bank", "build"] + paths + ["-o", bank]).status == 0)
        let base = Fixtures.model("tiny-llama")
        let viaBank = dir.file("via-bank"), direct = dir.file("direct")
        let r = try CommandRunner.tlora(["merge", bank, "--member", "a1", "--base", base, "-o", viaBank])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try CommandRunner.tlora(["merge", paths[1], "--base", base, "-o", direct]).status == 0)
        let x = try Checkpoint(path: viaBank), y = try Checkpoint(path: direct)
        for name in ["model.layers.0.self_attn.q_proj.weight", "model.layers.1.self_attn.q_proj.weight"] {
            let a = try #require(x.entry(name)).shard.tensor(name).floats(), b = try #require(y.entry(name)).shard.tensor(name).floats()
            #expect(Tolerance.maxAbsDifference(a, b) <= 1e-6, "\(name)")
        }
        let noMember = try CommandRunner.tlora(["merge", bank, "--base", base, "-o", dir.file("x")])
        #expect(noMember.status == 1)
        #expect(noMember.stderr.hasPrefix("error: \(bank): an adapter bank of 3 members (a0, a1, a2); choose one with --member NAME"), "\(noMember.stderr)")
        let notBank = try CommandRunner.tlora(["merge", paths[0], "--member", "a0", "--base", base, "-o", dir.file("y")])
        #expect(notBank.status == 1 && notBank.stderr.contains("not an adapter bank"), "\(notBank.stderr)")
    }

    @Test func addRefusesOrRebuilds() throws {
        let dir = TemporaryDirectory()
        let group = try Self.members(dir, count: 3, seed: 50)
        let stranger = SampleAdapters.bankMembers(seed: 51, members: 1, modules: 2, out: 24, in: 16, rank: 3, shared: 4, noise: 0.2)[0]
        let strangerPath = dir.file("stranger.tlora")
        try ContainerWriter.write(stranger, to: strangerPath)
        let bank = dir.file("bank.tlora")
        #expect(try CommandRunner.tlora(["bank", "build"] + group + ["-o", bank, "--max-rel-error", "0.02"]).status == 0)
        let refused = try CommandRunner.tlora(["bank", "add", bank, strangerPath, "-o", dir.file("grown.tlora")])
        #expect(refused.status == 1)
        #expect(refused.stderr.hasPrefix("error: \(strangerPath): stranger: projected onto the bank's bases"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--rebuild"))
        #expect(pathKind(dir.file("grown.tlora")) == .missing)
        let rebuilt = try CommandRunner.tlora(["bank", "add", bank, strangerPath, "-o", dir.file("grown.tlora"), "--rebuild"])
        #expect(rebuilt.status == 0, "\(rebuilt.stderr)")
        #expect(rebuilt.stdout.contains("bases extended, existing members unchanged"), "\(rebuilt.stdout)")
        let grown = try TLoRAFile(path: dir.file("grown.tlora")).loadBank()
        #expect(grown.members.map(\.name) == ["m0", "m1", "m2", "stranger"])
        let out = dir.file("s.tlora")
        #expect(try CommandRunner.tlora(["bank", "get", dir.file("grown.tlora"), "--member", "stranger", "-o", out]).status == 0)
        #expect(try CommandRunner.tlora(["verify", out, "--against", strangerPath, "--max-rel-error", "0.02"]).status == 0)
        // A name already in the bank.
        let twice = try CommandRunner.tlora(["bank", "add", bank, "m0=\(strangerPath)", "-o", dir.file("twice.tlora"), "--rebuild"])
        #expect(twice.status == 1 && twice.stderr.contains("already has a member named m0"), "\(twice.stderr)")
    }

    @Test func usageAndPathErrors() throws {
        let dir = TemporaryDirectory()
        let paths = try Self.members(dir, count: 2)
        let both = try CommandRunner.tlora(["bank", "build"] + paths + ["-o", dir.file("b.tlora"), "--max-rel-error", "0.1", "--rank", "2"])
        #expect(both.status == 2)
        let onInput = try CommandRunner.tlora(["bank", "build"] + paths + ["-o", paths[0], "--force"])
        #expect(onInput.status == 1 && onInput.stderr.contains("input"), "\(onInput.stderr)")
        #expect(TestFiles.read(paths[0]).count > 0)
        let missing = try CommandRunner.tlora(["bank", "build", paths[0], dir.file("nope"), "-o", dir.file("b.tlora")])
        #expect(missing.status == 1 && missing.stderr.hasPrefix("error: \(dir.file("nope")):"), "\(missing.stderr)")
        #expect(pathKind(dir.file("b.tlora")) == .missing)
        let dup = try CommandRunner.tlora(["bank", "build", paths[0], paths[0], "-o", dir.file("b.tlora")])
        #expect(dup.status == 1 && dup.stderr.contains("two members are named m0"), "\(dup.stderr)")
        let bank = dir.file("ok.tlora")
        #expect(try CommandRunner.tlora(["bank", "build"] + paths + ["-o", bank]).status == 0)
        let noSuch = try CommandRunner.tlora(["bank", "get", bank, "--member", "zz", "-o", dir.file("z.tlora")])
        #expect(noSuch.status == 1 && noSuch.stderr.contains("has no member zz (members: m0, m1)"), "\(noSuch.stderr)")
        let exists = try CommandRunner.tlora(["bank", "build"] + paths + ["-o", bank])
        #expect(exists.status == 1, "an existing output needs --force")
    }

    @Test func clustersAreReported() throws {
        let dir = TemporaryDirectory()
        let paths = try Self.members(dir, count: 6, seed: 60, groups: 2)
        let r = try CommandRunner.tlora(["bank", "build"] + paths + ["-o", dir.file("c.tlora"), "--max-rel-error", "0.05", "--clusters", "2", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try JSONParser.parse(r.stdout)
        #expect(json["cluster_trials"]?.arrayValue?.count == 2)
        #expect((json["worst_rel_error"]?.doubleValue ?? 1) <= 0.05)
    }
}
