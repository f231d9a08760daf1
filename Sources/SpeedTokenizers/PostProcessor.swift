// Post-processors: BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel (ids unchanged, offsets trimmed),
// Sequence. Special tokens they add get offsets 0..<0 and no word or sequence id.
// Invariant: with `addSpecialTokens == false` every processor but TemplateProcessing only concatenates the two sequences,
// keeping their type ids (0 for the first, 1 for the pair; RoBERTa: all 0); a template still lays out its sequences with
// its own type ids and leaves out only its special tokens, as HF's `apply_template` does.
import Foundation

indirect enum PostProcessor: Sendable {
    case bert(cls: TokenAndId, sep: TokenAndId)
    case roberta(cls: TokenAndId, sep: TokenAndId, trim: OffsetTrim?)
    case template(single: [TemplatePiece], pair: [TemplatePiece], specials: [String: TemplateSpecialToken])
    case byteLevel(trim: OffsetTrim?)
    case sequence([PostProcessor])

    /// ByteLevel's `trim_offsets` (nil when off), with its `add_prefix_space`.
    struct OffsetTrim: Sendable { let addPrefixSpace: Bool }

    init(_ c: PostProcessorConfig, key: String = "post_processor") throws {
        switch c.type {
        case "BertProcessing", "RobertaProcessing":
            guard let cls = c.cls, let sep = c.sep else {
                throw TokenizerError.invalid(key: key, reason: "\(c.type) needs \"cls\" and \"sep\" as [token, id]")
            }
            self = c.type == "BertProcessing" ? .bert(cls: cls, sep: sep)
                : .roberta(cls: cls, sep: sep, trim: PostProcessor.trim(c))
        case "TemplateProcessing":
            let specials = c.specialTokens ?? [:]
            for piece in (c.single ?? []) + (c.pair ?? []) {
                if let s = piece.specialToken, specials[s.id] == nil {
                    throw TokenizerError.invalid(key: "\(key).special_tokens", reason: "the template names \(s.id) but special_tokens does not define it")
                }
            }
            self = .template(single: c.single ?? [], pair: c.pair ?? [], specials: specials)
        case "ByteLevel": self = .byteLevel(trim: PostProcessor.trim(c))
        case "Sequence":
            self = .sequence(try (c.processors ?? []).enumerated().map {
                try PostProcessor($0.element, key: "\(key).processors[\($0.offset)]")
            })
        default: throw TokenizerError.unsupported(key: key, type: c.type)
        }
    }

    /// `trim_offsets` and `add_prefix_space` (both true unless the file says otherwise, as in HF).
    static func trim(_ c: PostProcessorConfig) -> OffsetTrim? {
        (c.trimOffsets ?? true) ? OffsetTrim(addPrefixSpace: c.addPrefixSpace ?? true) : nil
    }

    /// The trims this processor applies to each sequence before adding special tokens (a Sequence's in order).
    var trims: [OffsetTrim] {
        switch self {
        case .roberta(_, _, let trim), .byteLevel(let trim): return trim.map { [$0] } ?? []
        case .sequence(let ps): return ps.flatMap(\.trims)
        case .bert, .template: return []
        }
    }

    /// How many special tokens `process` adds (for truncation).
    func addedTokens(pair: Bool) -> Int {
        switch self {
        case .bert: return pair ? 3 : 2
        case .roberta: return pair ? 4 : 2
        case let .template(single, pairT, specials):
            return (pair ? pairT : single).reduce(0) { $0 + ($1.specialToken.map { specials[$0.id]?.ids.count ?? 0 } ?? 0) }
        case .byteLevel: return 0
        case .sequence(let ps): return ps.reduce(0) { $0 + $1.addedTokens(pair: pair) }
        }
    }

    func process(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool) -> Encoding {
        var (a, b) = (a, b)
        for t in trims {
            a.trimOffsets(addPrefixSpace: t.addPrefixSpace)
            b?.trimOffsets(addPrefixSpace: t.addPrefixSpace)
        }
        return add(a, b, addSpecialTokens: addSpecialTokens)
    }

    /// The sequences with this processor's special tokens (offsets already trimmed).
    private func add(_ a: Encoding, _ b: Encoding?, addSpecialTokens: Bool) -> Encoding {
        var out = Encoding()
        if case .roberta = self {
            // RoBERTa gives every token type id 0, with or without special tokens.
            var a = a
            a.typeIds = Array(repeating: 0, count: a.count)
            out.append(a)
            if var b {
                b.typeIds = Array(repeating: 0, count: b.count)
                out.append(b)
            }
            if !addSpecialTokens { return out }
            out = Encoding()
        }
        if !addSpecialTokens {
            switch self {
            case .template, .sequence: break
            default:
                out.append(a)
                if let b { out.append(b) }
                return out
            }
        }
        func special(_ t: TokenAndId, _ type: Int) { out.append(id: t.id, token: t.token, typeId: type, special: true) }
        func seq(_ e: Encoding, _ type: Int?) {
            var e = e
            if let type { e.typeIds = Array(repeating: type, count: e.count) }
            out.append(e)
        }
        switch self {
        case let .bert(cls, sep):
            special(cls, 0); seq(a, nil); special(sep, 0)
            if let b { seq(b, nil); special(sep, 1) }
        case let .roberta(cls, sep, _):
            special(cls, 0); seq(a, nil); special(sep, 0)
            if let b { special(sep, 0); seq(b, 0); special(sep, 0) }
        case let .template(single, pair, specials):
            for piece in b == nil ? single : pair {
                if let s = piece.specialToken, let t = specials[s.id] {
                    guard addSpecialTokens else { continue }
                    for (id, tok) in zip(t.ids, t.tokens) { out.append(id: id, token: tok, typeId: s.typeId, special: true) }
                } else if let s = piece.sequence {
                    if s.id == "A" { seq(a, s.typeId) } else if let b { seq(b, s.typeId) }
                }
            }
        case .byteLevel:
            out.append(a)
            if let b { out.append(b) }
        case .sequence(let ps):
            // Only one processor of a sequence adds tokens (ByteLevel only trims offsets, done in `process`).
            let adding = ps.first { if case .byteLevel = $0 { return false } else { return true } } ?? .byteLevel(trim: nil)
            return adding.add(a, b, addSpecialTokens: addSpecialTokens)
        }
        return out
    }

    /// Whether transformers' tokenizer for this processor returns `token_type_ids` (BERT-style pair templates).
    var usesTypeIds: Bool {
        switch self {
        case .bert: return true
        case .roberta, .byteLevel: return false
        case let .template(_, pair, _): return pair.contains { ($0.sequence?.typeId ?? $0.specialToken?.typeId ?? 0) != 0 }
        case .sequence(let ps): return ps.contains { $0.usesTypeIds }
        }
    }
}
