import TLoRAIO

/// A pickle interpreter that understands only what a `torch.save`d state dict contains and refuses
/// everything else. It never calls anything: `GLOBAL` may name only an allow-listed function or
/// storage class, and `REDUCE` only builds an empty `OrderedDict` or a tensor reference.
struct RestrictedUnpickler {
    indirect enum Value {
        case none
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string(String)
        case tuple([Value])
        case list([Value])
        case dict([(Value, Value)])
        case global(String)
        case storage(StorageRef)
        case tensor(TensorRef)
        case mark
    }

    struct StorageRef {
        /// `torch.FloatStorage` etc.
        var type: String
        /// The archive entry `data/<key>`.
        var key: String
        var elementCount: Int
    }

    struct TensorRef {
        var storage: StorageRef
        var offset: Int
        var shape: [Int]
        var stride: [Int]
    }

    static let allowedGlobals: Set<String> = [
        "collections.OrderedDict", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.DoubleStorage",
        "torch.LongStorage", "torch.IntStorage", "torch.ByteStorage", "torch.BoolStorage",
    ]

    static let maxStack = 1 << 16
    static let maxMemo = 1 << 20
    static let maxItems = 1 << 24

    let path: String
    private var reader: ByteReader
    private var stack: [Value] = []
    private var memo: [Int: Value] = [:]

    init(_ bytes: UnsafeRawBufferPointer, path: String) {
        self.reader = ByteReader(bytes)
        self.path = path
    }

    private func fail(_ p: String) -> InteropError { InteropError(.malformed, path, "refused pickle: \(p) at byte \(reader.offset)") }
    private func fail(_ code: InteropError.Code, _ p: String) -> InteropError { InteropError(code, path, "refused pickle: \(p) at byte \(reader.offset)") }

    private mutating func pop() throws -> Value {
        guard let v = stack.popLast() else { throw fail("stack underflow") }
        if case .mark = v { throw fail("unexpected MARK") }
        return v
    }

    private mutating func popToMark() throws -> [Value] {
        guard let m = stack.lastIndex(where: { if case .mark = $0 { return true }; return false }) else { throw fail("no MARK") }
        let items = Array(stack[(m + 1)...])
        stack.removeSubrange(m...)
        return items
    }

    private mutating func push(_ v: Value) throws {
        guard stack.count < Self.maxStack else { throw fail("stack deeper than \(Self.maxStack)") }
        stack.append(v)
    }

    private mutating func readString(length: Int) throws -> String {
        guard let b = reader.readBytes(length) else { throw fail("string of \(length) bytes runs past the end") }
        guard let s = String(validating: b, as: UTF8.self) else { throw fail("string is not UTF-8") }
        return s
    }

    private mutating func readLine() throws -> String {
        var bytes: [UInt8] = []
        while true {
            guard let c = reader.readInteger(as: UInt8.self) else { throw fail("unterminated GLOBAL name") }
            if c == 0x0A { break }
            bytes.append(c)
            guard bytes.count <= 256 else { throw fail("GLOBAL name too long") }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private mutating func memoPut(_ index: Int) throws {
        guard index >= 0, index < Self.maxMemo else { throw fail("memo index \(index) out of range") }
        guard let top = stack.last else { throw fail("PUT on an empty stack") }
        memo[index] = top
    }

    private mutating func memoGet(_ index: Int) throws {
        guard let v = memo[index] else { throw fail("GET of unset memo \(index)") }
        try push(v)
    }

    private mutating func setItems(_ pairs: [Value]) throws {
        guard pairs.count % 2 == 0 else { throw fail("SETITEMS with an odd number of values") }
        guard case .dict(var d) = try pop() else { throw fail("SETITEM on a non-dict") }
        var i = 0
        while i < pairs.count {
            d.append((pairs[i], pairs[i + 1]))
            i += 2
        }
        guard d.count <= Self.maxItems else { throw fail("dict too large") }
        try push(.dict(d))
    }

    /// Runs the program to STOP and returns the value it built.
    mutating func run() throws -> Value {
        while true {
            guard let op = reader.readInteger(as: UInt8.self) else { throw fail("ends without STOP") }
            switch op {
            case 0x80:  // PROTO
                guard let v = reader.readInteger(as: UInt8.self), v >= 2, v <= 5 else { throw fail("unsupported protocol") }
            case 0x95:  // FRAME
                guard reader.readInteger(as: UInt64.self) != nil else { throw fail("truncated FRAME") }
            case 0x7D: try push(.dict([]))  // EMPTY_DICT
            case 0x5D: try push(.list([]))  // EMPTY_LIST
            case 0x29: try push(.tuple([]))  // EMPTY_TUPLE
            case 0x28: try push(.mark)  // MARK
            case 0x4E: try push(.none)  // NONE
            case 0x88: try push(.bool(true))  // NEWTRUE
            case 0x89: try push(.bool(false))  // NEWFALSE
            case 0x58:  // BINUNICODE
                guard let n = reader.readInteger(as: UInt32.self) else { throw fail("truncated BINUNICODE") }
                try push(.string(try readString(length: Int(n))))
            case 0x8C:  // SHORT_BINUNICODE
                guard let n = reader.readInteger(as: UInt8.self) else { throw fail("truncated SHORT_BINUNICODE") }
                try push(.string(try readString(length: Int(n))))
            case 0x8D:  // BINUNICODE8
                guard let n = reader.readInteger(as: UInt64.self), let len = Int(exactly: n) else { throw fail("bad BINUNICODE8 length") }
                try push(.string(try readString(length: len)))
            case 0x4B:  // BININT1
                guard let v = reader.readInteger(as: UInt8.self) else { throw fail("truncated BININT1") }
                try push(.int(Int(v)))
            case 0x4D:  // BININT2
                guard let v = reader.readInteger(as: UInt16.self) else { throw fail("truncated BININT2") }
                try push(.int(Int(v)))
            case 0x4A:  // BININT
                guard let v = reader.readInteger(as: Int32.self) else { throw fail("truncated BININT") }
                try push(.int(Int(v)))
            case 0x8A:  // LONG1
                guard let n = reader.readInteger(as: UInt8.self), n <= 8, let b = reader.readBytes(Int(n)) else { throw fail("LONG1 wider than 64 bits") }
                var v: Int64 = 0
                for (i, byte) in b.enumerated() { v |= Int64(byte) << (8 * Int64(i)) }
                if n > 0, n < 8, b[Int(n) - 1] & 0x80 != 0 { v -= Int64(1) << (8 * Int64(n)) }
                try push(.int(Int(v)))
            case 0x47:  // BINFLOAT (big-endian)
                guard let bits = reader.readInteger(as: UInt64.self) else { throw fail("truncated BINFLOAT") }
                try push(.float(Double(bitPattern: bits.byteSwapped)))
            case 0x71:  // BINPUT
                guard let i = reader.readInteger(as: UInt8.self) else { throw fail("truncated BINPUT") }
                try memoPut(Int(i))
            case 0x72:  // LONG_BINPUT
                guard let i = reader.readInteger(as: UInt32.self) else { throw fail("truncated LONG_BINPUT") }
                try memoPut(Int(i))
            case 0x94:  // MEMOIZE
                try memoPut(memo.count)
            case 0x68:  // BINGET
                guard let i = reader.readInteger(as: UInt8.self) else { throw fail("truncated BINGET") }
                try memoGet(Int(i))
            case 0x6A:  // LONG_BINGET
                guard let i = reader.readInteger(as: UInt32.self) else { throw fail("truncated LONG_BINGET") }
                try memoGet(Int(i))
            case 0x74: try push(.tuple(try popToMark()))  // TUPLE
            case 0x85: try push(.tuple([try pop()]))  // TUPLE1
            case 0x86:  // TUPLE2
                let b = try pop(), a = try pop()
                try push(.tuple([a, b]))
            case 0x87:  // TUPLE3
                let c = try pop(), b = try pop(), a = try pop()
                try push(.tuple([a, b, c]))
            case 0x73:  // SETITEM
                let v = try pop(), k = try pop()
                try setItems([k, v])
            case 0x75: try setItems(try popToMark())  // SETITEMS
            case 0x61:  // APPEND
                let v = try pop()
                guard case .list(var l) = try pop() else { throw fail("APPEND to a non-list") }
                l.append(v)
                try push(.list(l))
            case 0x65:  // APPENDS
                let items = try popToMark()
                guard case .list(var l) = try pop() else { throw fail("APPENDS to a non-list") }
                l += items
                guard l.count <= Self.maxItems else { throw fail("list too large") }
                try push(.list(l))
            case 0x63:  // GLOBAL
                let module = try readLine(), name = try readLine()
                try push(try global(module + "." + name))
            case 0x93:  // STACK_GLOBAL
                guard case .string(let name) = try pop(), case .string(let module) = try pop() else { throw fail("STACK_GLOBAL needs two strings") }
                try push(try global(module + "." + name))
            case 0x51:  // BINPERSID
                try push(try persistent(try pop()))
            case 0x52:  // REDUCE
                let args = try pop(), callable = try pop()
                try push(try reduce(callable, args))
            case 0x62:  // BUILD: only the empty state PyTorch attaches to rebuilt parameters,
                // and the `_metadata` (module versions) that `Module.state_dict()` attaches to its
                // OrderedDict; both are dropped, nothing is set on anything.
                let state = try pop()
                if case .none = state { break }
                if case .dict(let d) = state, d.isEmpty { break }
                if case .dict(let d) = state, d.count == 1, case .string("_metadata") = d[0].0, case .dict = d[0].1,
                   case .dict = stack.last {
                    break
                }
                throw fail("BUILD with state is not allowed")
            case 0x2E:  // STOP
                let v = try pop()
                guard stack.isEmpty else { throw fail("values left on the stack at STOP") }
                return v
            default:
                throw fail("opcode 0x\(String(op, radix: 16)) is not allowed in a tensor state dict")
            }
        }
    }

    private func global(_ name: String) throws -> Value {
        guard Self.allowedGlobals.contains(name) else { throw fail("forbidden global \(name)") }
        return .global(name)
    }

    /// `('storage', <Storage class>, key, location, numel)`.
    private func persistent(_ pid: Value) throws -> Value {
        guard case .tuple(let t) = pid, t.count == 5, case .string("storage") = t[0], case .global(let type) = t[1],
              case .string(let key) = t[2], case .int(let count) = t[4], count >= 0 else {
            throw fail("persistent id is not a tensor storage")
        }
        return .storage(StorageRef(type: type, key: key, elementCount: count))
    }

    private func ints(_ v: Value) throws -> [Int] {
        guard case .tuple(let items) = v else { throw fail("expected a tuple of integers") }
        return try items.map { guard case .int(let i) = $0 else { throw fail("expected an integer") }; return i }
    }

    private func reduce(_ callable: Value, _ args: Value) throws -> Value {
        guard case .global(let name) = callable, case .tuple(let a) = args else { throw fail("REDUCE of a non-function") }
        switch name {
        case "collections.OrderedDict":
            guard a.isEmpty else { throw fail("OrderedDict with arguments") }
            return .dict([])
        case "torch._utils._rebuild_tensor_v2":
            guard a.count >= 4, case .storage(let s) = a[0], case .int(let offset) = a[1] else { throw fail("malformed _rebuild_tensor_v2 arguments") }
            let shape = try ints(a[2]), stride = try ints(a[3])
            guard shape.count == stride.count, shape.count <= 8 else { throw fail("tensor shape and stride disagree") }
            return .tensor(TensorRef(storage: s, offset: offset, shape: shape, stride: stride))
        case "torch._utils._rebuild_parameter":
            guard let first = a.first, case .tensor = first else { throw fail("malformed _rebuild_parameter arguments") }
            return first
        default:
            throw fail("calling \(name) is not allowed")
        }
    }
}
