import Testing
@testable import TLoRAIO
import _TLoRATestSupport

#if canImport(Glibc)
import Glibc
#endif

/// `copyTree`, which copies a base's other files into a merged model: links are followed, loops
/// are refused instead of copied without end.
@Suite struct FileTreeTests {
    @Test func linksAreFollowedAndLoopsRefused() throws {
        let dir = TemporaryDirectory()
        makeDirectory(dir.file("blobs"))
        makeDirectory(dir.file("model/sub"))
        TestFiles.write(dir.file("blobs/config"), Array("{}".utf8))
        TestFiles.write(dir.file("model/sub/a"), [1, 2, 3])
        // A snapshot in the Hugging Face cache: the file is a link to a blob.
        symlink(dir.file("blobs/config"), dir.file("model/config.json"))
        try copyTree(dir.file("model"), to: dir.file("copy"))
        #expect(pathKind(dir.file("copy/config.json")) == .file)
        #expect(TestFiles.read(dir.file("copy/config.json")) == Array("{}".utf8))
        #expect(TestFiles.read(dir.file("copy/sub/a")) == [1, 2, 3])
        // A link from inside the tree back to an ancestor: refused, naming the link.
        symlink(dir.file("model"), dir.file("model/sub/loop"))
        #expect(throws: IOError.cannotOpen(path: dir.file("model/sub/loop"), errno: ELOOP)) {
            try copyTree(dir.file("model"), to: dir.file("copy2"))
        }
        // A link to a sibling directory is an ordinary copy, not a loop.
        removeTree(dir.file("model/sub/loop"))
        symlink(dir.file("model/sub"), dir.file("model/again"))
        try copyTree(dir.file("model"), to: dir.file("copy3"))
        #expect(TestFiles.read(dir.file("copy3/again/a")) == [1, 2, 3])
    }
}
