import ArgumentParser
import TLoRAConvert
import TLoRAIO
import TLoRANumerics

/// The error/rank options every lossy conversion takes.
struct ErrorTargetOptions: ParsableArguments {
    @Option(help: "Guarantee ‖ΔW − ΔŴ‖_F ≤ E·‖ΔW‖_F per module (per group for Tucker); 0 ≤ E < 1, 0 = lossless.")
    var maxRelError: Double?

    @Option(help: "Cap every rank at R (instead of --max-rel-error).")
    var maxRank: Int?

    func validate() throws {
        try Self.checkRange(maxRelError)
        if let r = maxRank, r < 1 { throw ValidationError("--max-rank must be at least 1") }
        if maxRelError != nil && maxRank != nil {
            throw ValidationError("--max-rel-error and --max-rank are alternatives: a rank cap can break the error bound, so give one of them")
        }
    }

    /// The one range of `--max-rel-error` everywhere (convert and verify): a relative error of 1 is
    /// what an empty update has, so bounds start below it.
    static func checkRange(_ e: Double?) throws {
        if let e, !(e >= 0 && e < 1) { throw ValidationError("--max-rel-error must be at least 0 and below 1 (got \(e))") }
    }

    /// A bound no result stored in `dtype` can meet is refused before any work (0 means lossless).
    func checkReachable(storedAs dtype: DType) throws {
        try Self.checkReachable(maxRelError, storedAs: dtype)
    }

    static func checkReachable(_ e: Double?, storedAs dtype: DType) throws {
        guard let e, e > 0, e < dtype.unitRoundoff else { return }
        throw ValidationError("--max-rel-error \(e) is below the rounding error of \(dtype.rawValue) storage (\(Formatting.scientific(dtype.unitRoundoff))): "
            + (dtype == .f64 ? "no stored result can meet it; use 0 for an exact conversion" : "use 0 for an exact conversion, or --dtype f64"))
    }

    /// Lossless when neither option is given.
    var target: ConversionTarget {
        if maxRelError == nil && maxRank == nil { return .lossless }
        return ConversionTarget(maxRelativeError: maxRelError, maxRank: maxRank ?? Int.max)
    }
}

enum StorageDType: String, ExpressibleByArgument, CaseIterable {
    case f32, f64, f16, bf16
    var dtype: DType { DType(rawValue: rawValue)! }  // safe: same raw values
}

/// Prints a conversion's per-module/group table and totals, or the same as one JSON document.
enum ConversionPrinter {
    static func print(_ summary: ConversionSummary, source: String, sourceBytes: Int?, outputBytes: Int, output: String, json: Bool) {
        if json {
            Console.out(JSONWriter.string(.object(document(summary, source: source, sourceBytes: sourceBytes, outputBytes: outputBytes, output: output)), indent: 2))
            return
        }
        let rows = summary.lines.map { l -> [String] in
            [l.name, l.form, l.ranks.map(String.init).joined(separator: ","), String(l.sourceParameters), String(l.parameters),
             l.bound.map(Formatting.scientific) ?? "-", Formatting.scientific(l.relativeError), l.note ?? ""]
        }
        Console.text(Formatting.table(header: ["module/group", "form", "ranks", "params before", "params after", "bound", "rel.error", "how"],
                                      rows: rows, rightAligned: [3, 4, 5, 6]))
        for (name, reason) in summary.notes { Console.text("note: \(name): \(reason)") }
        for (name, reason) in summary.unchanged { Console.text("unchanged: \(name): \(reason)") }
        let ratio = summary.sourceParameters > 0 ? Double(summary.parameters) / Double(summary.sourceParameters) : 0
        Console.text("\(output): converted updates hold \(summary.parameters) parameters (\(Formatting.fixed(ratio, digits: 3))× their source's \(summary.sourceParameters)); "
            + "file \(Formatting.bytes(outputBytes))\(sourceBytes.map { ", source tensors " + Formatting.bytes($0) } ?? ""); worst error \(Formatting.scientific(summary.worstError))")
    }

    static func document(_ summary: ConversionSummary, source: String, sourceBytes: Int?, outputBytes: Int, output: String) -> JSONObject {
        var o = JSONObject()
        o["output"] = JSONValue(output)
        o["source"] = JSONValue(source)
        o["file_bytes"] = JSONValue(outputBytes)
        o["source_tensor_bytes"] = sourceBytes.map(JSONValue.init) ?? .null
        o["parameters"] = JSONValue(summary.parameters)
        o["source_parameters"] = JSONValue(summary.sourceParameters)
        o["worst_rel_error"] = JSONValue(summary.worstError)
        o["entries"] = .array(summary.lines.map { l in
            .object(JSONObject([
                ("name", JSONValue(l.name)), ("form", JSONValue(l.form)), ("ranks", JSONValue(l.ranks)),
                ("source_parameters", JSONValue(l.sourceParameters)), ("parameters", JSONValue(l.parameters)),
                ("bound", l.bound.map(JSONValue.init) ?? .null), ("rel_error", JSONValue(l.relativeError)),
                ("how", l.note.map(JSONValue.init) ?? .null), ("members", JSONValue(l.members)),
            ]))
        })
        func reasons(_ list: [(name: String, reason: String)]) -> JSONValue {
            .array(list.map { .object(JSONObject([("name", JSONValue($0.name)), ("reason", JSONValue($0.reason))])) })
        }
        o["notes"] = reasons(summary.notes)
        o["unchanged"] = reasons(summary.unchanged)
        return o
    }
}
