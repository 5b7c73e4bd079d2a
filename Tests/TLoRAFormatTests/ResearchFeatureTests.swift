import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAModel
import _TLoRATestSupport

/// The two required features research adapters use (docs/FORMAT.md §2.1): the writer lists exactly
/// the ones a file needs, the reader refuses a file that uses one without listing it, and both
/// kinds round-trip bit for bit.
@Suite struct ResearchFeatureTests {
    static func jointAndReversed() -> Adapter {
        let v: [Float] = [1, 2, 0, 1]
        let g1 = StoredTensor([1, 0, 0, 1], shape: [1, 1, 2, 2])
        let g2 = StoredTensor([1, 2, 3, 4, 0.5, -0.5], shape: [2, 1, 3, 1])
        let joint = AdapterModule(name: "j", outFeatures: 2, inFeatures: 4, scale: 2,
                                  update: .jointTrain(JointTrain(cores: [g1, g2], latent: StoredTensor([1], shape: [1, 1]), rank: 1)))
        let tt = TensorTrain(cores: [StoredTensor(v, shape: [1, 1, 2, 2]), StoredTensor([1, 2, 3, 4, 5, 6], shape: [2, 1, 3, 1]),
                                     StoredTensor([1, -1], shape: [1, 2, 1, 1])],
                             rowOrder: .forward, columnOrder: .reversed)
        let train = AdapterModule(name: "t", outFeatures: 2, inFeatures: 6, scale: 1, update: .tensorTrain(tt))
        return Adapter(modules: [joint, train])
    }

    @Test func writerListsTheFeaturesAndRoundTrips() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("r.tlora")
        try ContainerWriter.write(Self.jointAndReversed(), to: path)
        let file = try TLoRAFile(path: path)
        #expect(file.header.requiredFeatures == ["joint-train", "tt-index-order"])
        #expect(try file.loadAdapter() == Self.jointAndReversed())
        #expect(TLoRAFile.verify(path: path).isIntact)
        // A file without either lists none (a version 1.0 reader reads it).
        try ContainerWriter.write(SampleAdapters.lora(seed: 1, modules: 1, out: 4, in: 4, rank: 1), to: dir.file("plain.tlora"))
        #expect(try TLoRAFile(path: dir.file("plain.tlora")).header.requiredFeatures.isEmpty)
    }

    static func editedHeader(_ edit: (String) -> String) throws -> String {
        try SpecBuilder.reopenEdited(Self.jointAndReversed(), edit)
    }

    @Test func usingAFeatureWithoutListingItIsRefused() throws {
        let noJoint = try Self.editedHeader { $0.replacingFirst("\"joint-train\",", with: "") }
        #expect(noJoint.contains("is a joint train but the file does not list the required feature joint-train"), "\(noJoint)")
        let noOrder = try Self.editedHeader { $0.replacingFirst(",\"tt-index-order\"", with: "") }
        #expect(noOrder.contains("does not list the required feature tt-index-order"), "\(noOrder)")
        let unknownOrder = try Self.editedHeader { $0.replacingFirst("\"reversed\"", with: "\"sideways\"") }
        #expect(unknownOrder.contains("unknown digit order \"sideways\""), "\(unknownOrder)")
        let badRank = try Self.editedHeader { $0.replacingFirst("\"rank\":1", with: "\"rank\":2") }
        #expect(badRank.contains("rank 2 factors of a 2×4 layer need 2 × (4 + 2)"), "\(badRank)")
        #expect(try Self.editedHeader { $0 }.isEmpty)
    }
}
