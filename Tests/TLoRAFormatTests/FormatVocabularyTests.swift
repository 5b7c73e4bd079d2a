import Testing
import TLoRAFormat
import TLoRAModel
import TLoRANumerics

/// The header's words are the format's (docs/FORMAT.md §2.2, §2.3), fixed whatever Swift calls the cases.
@Suite struct FormatVocabularyTests {
    @Test func dtypeWordsAreTheSpecsAndRoundTrip() {
        #expect(DType.allCases.map(FormatVocabulary.name(of:)) == ["f32", "f64", "f16", "bf16"])
        for d in DType.allCases { #expect(FormatVocabulary.dtype(named: FormatVocabulary.name(of: d)) == d) }
        for word in ["F32", "float32", "bfloat16", "", "f8"] { #expect(FormatVocabulary.dtype(named: word) == nil) }
    }

    @Test func updateWordsAreTheSpecsAndRoundTrip() {
        #expect(UpdateKind.allCases.map(FormatVocabulary.name(of:)) == ["low_rank", "tensor_train", "tucker_slice", "dense", "joint_train", "conv_tucker", "kronecker", "hadamard", "low_rank_diagonal", "vera", "ia3", "bank_core"])
        for k in UpdateKind.allCases { #expect(FormatVocabulary.updateKind(named: FormatVocabulary.name(of: k)) == k) }
        #expect(FormatVocabulary.updateKind(named: "lowRank") == nil)
    }
}
