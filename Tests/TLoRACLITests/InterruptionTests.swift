import Testing
import TLoRAIO
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `merge`, `convert` and `export` interrupted at random moments (docs/CLI.md, "Outputs"):
/// after SIGINT or SIGTERM the output folder holds nothing new and the process ended by that
/// signal (or it had finished: exit 0 and a complete output); after SIGKILL the folder holds at
/// most the documented `.NAME.tlora-tmp-*` leftovers, which the next run removes. The inputs are
/// byte-identical after every run.
@Suite(.serialized) struct InterruptionTests {
    struct Job {
        let name: String
        let output: String  // file name inside the job's folder
        /// Writes its temporary long enough for a poll to see it (the GGUF writer encodes in memory
        /// and then writes 3 MB in one go).
        var longWrite = true
        let arguments: (String) -> [String]
    }

    static func jobs(adapter: String, base: String, train: String) -> [Job] {
        [
            Job(name: "merge", output: "merged") { ["merge", adapter, "--base", base, "-o", $0] },
            Job(name: "dense-to-tt", output: "tt.tlora") { ["convert", "dense-to-tt", adapter, "-o", $0, "--max-rel-error", "0.01"] },
            Job(name: "export peft", output: "peft") { ["export", train, "--format", "peft", "-o", $0] },
            Job(name: "export gguf", output: "a.gguf", longWrite: false) { ["export", train, "--format", "gguf", "--architecture", "llama", "--heads", "8", "-o", $0] },
        ]
    }

    static func isTemporary(_ name: String) -> Bool { name.hasPrefix(".") && name.contains(".tlora-tmp-") }
    static func isWriterTemporary(_ name: String) -> Bool { isTemporary(name) && !name.hasSuffix("-probe") }

    /// Seconds since an arbitrary start.
    static func now() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) * 1e-9
    }

    @Test func signalsLeaveOnlyTheInputsOrTheDocumentedLeftovers() throws {
        let dir = TemporaryDirectory()
        let (base, adapter) = try CrashSafetyTests.workload(dir)
        // A tensor-train adapter: export converts it to LoRA first, so it works a while.
        let train = dir.file("train.tlora")
        let made = try CommandRunner.tlora(["convert", "dense-to-tt", adapter, "-o", train, "--max-rel-error", "0.001"])
        #expect(made.status == 0, "\(made.stderr)")
        let inputs = { treeFingerprint(base).merging(treeFingerprint(adapter).mapKeys { "adapter" + $0 }) { a, _ in a }
            .merging(treeFingerprint(train).mapKeys { "train" + $0 }) { a, _ in a } }
        let inputsBefore = inputs()
        var g = SeededGenerator(seed: 18)

        for job in Self.jobs(adapter: adapter, base: base, train: train) {
            // The uninterrupted result and how long it takes.
            let referenceFolder = dir.file("reference-\(job.output)")
            makeDirectory(referenceFolder)
            let started = Self.now()
            let ok = try CommandRunner.tlora(job.arguments(joinPath(referenceFolder, job.output)))
            let duration = Self.now() - started
            #expect(ok.status == 0, "\(job.name): \(ok.stderr)")
            let expected = treeFingerprint(joinPath(referenceFolder, job.output))

            for sig in [SIGINT, SIGTERM, SIGKILL] {
                var interrupted = 0, interruptedWhileWriting = 0
                // A job whose temporary lives too briefly to be seen gets more runs, each signalled
                // at a random moment of its work.
                for run in 0..<(job.longWrite ? 3 : 5) {
                    let folder = dir.file("\(job.output)-\(sig)-\(run)")
                    makeDirectory(folder)
                    let output = joinPath(folder, job.output)
                    let child = try ChildProcess(CommandRunner.executable, job.arguments(output))
                    var sawTemporary = false
                    if run < 2 && job.longWrite {
                        // Wait until the writer's temporary exists (not the writability probe of the
                        // output check, which comes before the work), then signal at once or a moment
                        // later: the signal lands while writing even where writing takes milliseconds.
                        let deadline = Self.now() + 60
                        while !child.hasEnded, Self.now() < deadline {
                            if ((try? directoryEntries(folder)) ?? []).contains(where: Self.isWriterTemporary) { sawTemporary = true; break }
                            usleep(200)
                        }
                        if run == 1 { usleep(useconds_t(Double.random(in: 0...0.002, using: &g) * 1e6)) }
                    } else {
                        usleep(useconds_t(Double.random(in: 0...(0.8 * duration), using: &g) * 1e6))
                    }
                    child.signal(sig)
                    let ending = child.wait()
                    let left = (try? directoryEntries(folder)) ?? []
                    let context = "\(job.name), signal \(sig), run \(run): \(ending), left \(left)"
                    if ending == .exited(0) {
                        #expect(left == [job.output], "\(context)")
                        #expect(treeFingerprint(output) == expected, "\(context): the output is not the complete result")
                        continue
                    }
                    #expect(ending == .signalled(sig), "\(context)")
                    interrupted += 1
                    if sawTemporary { interruptedWhileWriting += 1 }
                    if sig == SIGKILL {
                        #expect(left.allSatisfy(Self.isTemporary) || left.filter { !Self.isTemporary($0) } == [job.output], "\(context)")
                        if pathKind(output) != .missing {
                            #expect(treeFingerprint(output) == expected, "\(context): a killed run left an incomplete output")
                            removeTree(output)
                        }
                        // The next run removes the leftovers of the dead one.
                        let rerun = try CommandRunner.tlora(job.arguments(output))
                        #expect(rerun.status == 0, "\(context): rerun: \(rerun.stderr)")
                        #expect((try? directoryEntries(folder)) == [job.output], "\(context): after the rerun \((try? directoryEntries(folder)) ?? [])")
                    } else {
                        #expect(left.isEmpty, "\(context): SIGINT/SIGTERM must leave nothing")
                    }
                }
                #expect(interrupted > 0, "\(job.name), signal \(sig): no run was interrupted")
                #expect(interruptedWhileWriting > 0 || !job.longWrite, "\(job.name), signal \(sig): no run was interrupted while writing")
            }
        }
        #expect(inputs() == inputsBefore, "an input changed")
    }
}
