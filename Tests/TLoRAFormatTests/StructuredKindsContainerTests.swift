import Testing
import TLoRAFormat
import TLoRAIO
import TLoRAModel
import TLoRANumerics
import _TLoRATestSupport

/// The structured forms in the container: bit-exact round trips, exactly the features they use,
/// and a file that uses one without listing it refused (docs/FORMAT.md §2.1).
@Suite struct StructuredKindsContainerTests {
    @Test(arguments: DType.allCases, [0, 1, 2, 3])
    func everyStructuredFormRoundTripsBitExact(dtype: DType, codecIndex: Int) throws {
        let dir = TemporaryDirectory()
        let adapter = SampleAdapters.structured(seed: 11 + UInt64(codecIndex), dtype: dtype)
        let path = dir.file("s.tlora")
        try ContainerWriter.write(adapter, to: path, options: WriteOptions(codec: RoundTripTests.codecs[codecIndex], level: 3))
        let file = try TLoRAFile(path: path)
        #expect(file.header.requiredFeatures == ["bias-delta", "conv-kernel", "conv-tucker", "dora-in-axis", "hadamard", "ia3",
                                                 "kronecker", "low-rank-diagonal", "vera"])
        #expect(try file.loadAdapter() == adapter)
        #expect(TLoRAFile.verify(path: path).isIntact)
    }

    static func edited(_ edit: (String) -> String) throws -> String {
        try SpecBuilder.reopenEdited(SampleAdapters.structured(seed: 1, dtype: .f32), edit)
    }

    static func editedError(_ edit: (String) -> String) throws -> (any Error)? {
        try SpecBuilder.reopenEditedError(SampleAdapters.structured(seed: 1, dtype: .f32), edit)
    }

    @Test func aFormUsedWithoutItsFeatureIsRefused() throws {
        for (feature, what) in [("kronecker", "is a kronecker update"), ("hadamard", "is a hadamard update"), ("conv-kernel", "adapts a convolution"),
                                ("dora-in-axis", "has DoRA on the input axis"), ("bias-delta", "changes a bias"), ("ia3", "is a ia3 update"),
                                ("low-rank-diagonal", "is a low_rank_diagonal update"), ("conv-tucker", "is a conv_tucker update")] {
            let error = try Self.editedError { $0.replacingFirst("\"\(feature)\",", with: "") }
            #expect((error as? FormatError)?.code == .missingRequiredFeature, "\(feature): \(String(describing: error))")
            #expect("\(error.map { "\($0)" } ?? "")".contains("\(what) but the file does not list the required feature \(feature)"))
        }
        let noVera = try Self.editedError { $0.replacingFirst(",\"vera\"", with: "") }
        #expect((noVera as? FormatError)?.code == .missingRequiredFeature && "\(noVera.map { "\($0)" } ?? "")".hasSuffix("feature vera"))
    }

    @Test func anUnknownFeatureOrFactorFormIsRefused() throws {
        let unknown = try Self.edited { $0.replacingFirst("\"kronecker\",", with: "\"kronecker\",\"int4-blocks\",") }
        #expect(unknown.contains("int4-blocks"), "\(unknown)")
        let form = try Self.edited { $0.replacingFirst("\"form\":\"full\"", with: "\"form\":\"sparse\"") }
        #expect(form.contains("unknown factor form \"sparse\""), "\(form)")
        let axis = try Self.edited { $0.replacingFirst("\"axis\":\"in\"", with: "\"axis\":\"rows\"") }
        #expect(axis.contains("unknown axis \"rows\""), "\(axis)")
    }

    @Test func shapesBreakingTheRulesAreRefusedFromTheHeader() throws {
        // The Kronecker W1 of layers.0.lokr is 3×2; claiming the layer is 13 rows breaks a·b = out.
        let kron = try Self.edited { $0.replacingFirst("\"name\":\"layers.0.lokr\",\"shape\":[12,8]", with: "\"name\":\"layers.0.lokr\",\"shape\":[13,8]") }
        #expect(kron.contains("W1 (3×2) ⊗ W2 (4×4) is not 13×8"), "\(kron)")
        let kernel = try Self.edited { $0.replacingFirst("\"kernel\":[3,3]", with: "\"kernel\":[3,4]") }
        #expect(kernel.contains("not whole input channels") || kernel.contains("kernel positions"), "\(kernel)")
        let orphan = try Self.edited { $0.replacingFirst("\"projections\":[{\"name\":\"vera\",\"a\":\"p0.a\",\"b\":\"p0.b\"}]", with: "\"projections\":[]") }
        #expect(orphan.contains("refers to projections vera, which do not exist") || orphan.contains("not used"), "\(orphan)")
    }

    /// Projections no `vera` module uses are orphans like an unused Tucker group (§2.7).
    @Test func projectionsNoModuleUsesAreRefused() throws {
        let dir = TemporaryDirectory()
        var adapter = SampleAdapters.structured(seed: 1, dtype: .f32)
        let pair = adapter.projections[0]
        adapter.projections.append(ProjectionPair(name: "idle", a: pair.a, b: pair.b))
        let path = dir.file("idle.tlora")
        try ContainerWriter.write(adapter, to: path)
        #expect(throws: FormatError.self) { _ = try TLoRAFile(path: path) }
        do { _ = try TLoRAFile(path: path) } catch { #expect("\(error)".contains("projections idle: are used by no module"), "\(error)") }
    }
}
