import Testing
import TLoRAIO
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The rules every output goes through (`OutputPlan`, `OutputKind`, `StaleTemporaries`).
@Suite struct OutputPlanTests {
    static let magic = Array("TESTMAGC".utf8)
    static let kind = OutputKind.file("a test file", magic: magic)

    func plan(_ path: String, replace: Bool = false, inputs: [String], kind: OutputKind = OutputPlanTests.kind) -> OutputPlan {
        OutputPlan(path: path, kind: kind, replace: replace, inputs: inputs)
    }

    @Test func outputMayNotBeHoldOrLieInAnInput() throws {
        let dir = TemporaryDirectory()
        makeDirectory(dir.file("in/sub"))
        TestFiles.write(dir.file("in/sub/a"), [1, 2, 3])
        symlink(dir.file("in"), dir.file("link"))
        let input = dir.file("in/sub/a")
        for replace in [false, true] {
            #expect(throws: IOError.outputIsInput(path: input, input: input)) { try plan(input, replace: replace, inputs: [input]).check() }
            // Through a link and a `..`: the same file.
            let viaLink = dir.file("link/sub/../sub/a")
            #expect(throws: IOError.outputIsInput(path: viaLink, input: input)) { try plan(viaLink, replace: replace, inputs: [input]).check() }
            let inside = dir.file("link/sub/new")
            #expect(throws: IOError.outputInsideInput(path: inside, input: dir.file("in"))) {
                try plan(inside, replace: replace, inputs: [dir.file("in")], kind: .directory).check()
            }
            #expect(throws: IOError.outputContainsInput(path: dir.file("in"), input: input)) {
                try plan(dir.file("in"), replace: replace, inputs: [input], kind: .directory).check()
            }
        }
        // A file output named like a directory is refused (cp would too).
        #expect(throws: IOError.self) { try plan(dir.file("new/"), inputs: []).check() }
        // A sibling is fine.
        try plan(dir.file("in/sub/b"), inputs: [input]).check()
    }

    @Test func forceReplacesOnlyWhatTLoRAWrote() throws {
        let dir = TemporaryDirectory()
        let ours = dir.file("ours"), foreign = dir.file("foreign")
        TestFiles.write(ours, Self.magic + [0])
        TestFiles.write(foreign, Array("notes".utf8))
        #expect(throws: IOError.outputExists(path: ours)) { try plan(ours, inputs: []).check() }
        try plan(ours, replace: true, inputs: []).check()
        #expect(throws: IOError.notOurs(path: foreign, expected: "a test file", found: nil)) { try plan(foreign, replace: true, inputs: []).check() }
        symlink(ours, dir.file("link"))
        #expect(throws: IOError.notOurs(path: dir.file("link"), expected: "a test file", found: "a symbolic link")) {
            try plan(dir.file("link"), replace: true, inputs: []).check()
        }

        // Directories: the writer's marker decides; anything it does not list blocks --force.
        let out = dir.file("out")
        let w = try AtomicDirectoryWriter(destination: out, overwrite: false)
        TestFiles.write(w.path(for: "weights"), [1])
        makeDirectory(w.path(for: "sub"))
        TestFiles.write(w.path(for: "sub/x"), [2])
        try w.commit()
        #expect(pathKind(joinPath(out, OutputKind.markerName)) == .file)
        try OutputKind.directory.checkReplaceable(out)
        TestFiles.write(joinPath(out, "sub/mine.txt"), [3])
        #expect(throws: IOError.notOurs(path: out, expected: "a directory tlora wrote", found: "files tlora did not write: sub/mine.txt")) {
            try plan(out, replace: true, inputs: [], kind: .directory).check()
        }
        #expect(throws: IOError.self) { _ = try AtomicDirectoryWriter(destination: out, overwrite: true) }
        unlink(joinPath(out, "sub/mine.txt"))
        let again = try AtomicDirectoryWriter(destination: out, overwrite: true)
        TestFiles.write(again.path(for: "weights"), [9])
        try again.commit()
        #expect(TestFiles.read(joinPath(out, "weights")) == [9])
        #expect(pathKind(joinPath(out, "sub")) == .missing)

        // A directory without a marker is never replaced; an empty one counts as missing.
        makeDirectory(dir.file("theirs"))
        TestFiles.write(dir.file("theirs/a"), [1])
        #expect(throws: IOError.notOurs(path: dir.file("theirs"), expected: "a directory tlora wrote", found: "no .tlora-output marker")) {
            try plan(dir.file("theirs"), replace: true, inputs: [], kind: .directory).check()
        }
        makeDirectory(dir.file("empty"))
        try plan(dir.file("empty"), inputs: [], kind: .directory).check()
        let intoEmpty = try AtomicDirectoryWriter(destination: dir.file("empty"), overwrite: false)
        TestFiles.write(intoEmpty.path(for: "f"), [1])
        try intoEmpty.commit()
        #expect(TestFiles.read(dir.file("empty/f")) == [1])
    }

    @Test func removingATreeNeverFollowsALink() throws {
        let dir = TemporaryDirectory()
        makeDirectory(dir.file("precious"))
        TestFiles.write(dir.file("precious/a"), [1])
        makeDirectory(dir.file("tree"))
        symlink(dir.file("precious"), dir.file("tree/link"))
        removeTree(dir.file("tree"))
        #expect(pathKind(dir.file("tree")) == .missing)
        #expect(TestFiles.read(dir.file("precious/a")) == [1])
    }

    @Test func missingFolderAndReadOnlyFolderAreRefusedBeforeWork() throws {
        let dir = TemporaryDirectory()
        #expect(throws: IOError.badOutputPath(path: dir.file("no/x"), reason: "the folder \(dir.file("no")) does not exist")) {
            try plan(dir.file("no/x"), inputs: []).check()
        }
        TestFiles.write(dir.file("file"), [1])
        #expect(throws: IOError.badOutputPath(path: dir.file("file/x"), reason: "\(dir.file("file")) is not a directory")) {
            try plan(dir.file("file/x"), inputs: []).check()
        }
        // Root ignores permissions: a read-only bind is not available in tests, so check as another user only.
        if geteuid() != 0 {
            makeDirectory(dir.file("ro"))
            chmod(dir.file("ro"), 0o555)
            #expect(throws: IOError.notWritable(path: dir.file("ro/x"), folder: dir.file("ro"), errno: EACCES)) {
                try plan(dir.file("ro/x"), inputs: []).check()
            }
            chmod(dir.file("ro"), 0o755)
        }
    }

    @Test func staleTemporariesOfDeadRunsAreRemovedLiveOnesKept() throws {
        let dir = TemporaryDirectory()
        // A pid that surely has ended: a child we started and reaped.
        let child = try ChildProcess("/bin/true", [])
        _ = child.wait()
        let dead = dir.file(".out.tlora.tlora-tmp-\(child.pid)-1")
        let deadDir = dir.file(".merged.tlora-tmp-\(child.pid)-2")
        TestFiles.write(dead, [1])
        makeDirectory(deadDir + "/inner")
        // A live writer's temporary (this process, locked) and a look-alike that is not ours.
        let live = try AtomicFileWriter(destination: dir.file("live.tlora"), overwrite: false)
        TestFiles.write(dir.file(".notes.tlora-tmp-x"), [1])
        try plan(dir.file("new"), inputs: []).check()
        let left = try directoryEntries(dir.path)
        #expect(!left.contains(baseName(dead)) && !left.contains(baseName(deadDir)), "\(left)")
        #expect(left.contains(baseName(live.temporaryPath)) && left.contains(".notes.tlora-tmp-x"), "\(left)")
        #expect(LiveTemporaries.registered.contains(live.temporaryPath))
        try live.commit()
        #expect(!LiveTemporaries.registered.contains(live.temporaryPath))
    }

    @Test func jsonHoldsNoNonFiniteNumber() {
        #expect(JSONValue(Double.nan) == .null)
        #expect(JSONValue(-Double.infinity) == .null)
        #expect(JSONWriter.string(.array([JSONValue(1.5), JSONValue(Double.infinity)])) == "[1.5,null]")
    }
}
