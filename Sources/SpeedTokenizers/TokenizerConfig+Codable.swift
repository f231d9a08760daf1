// tokenizer.json and tokenizer_config.json as Codable values, mirroring Hugging Face's schema key for key.
// Invariant: each component is one struct with a `type` and optional fields; building it checks `type` and the fields
// that type needs, so an unknown component fails with its key path, never silently.
import Foundation

/// A whole `tokenizer.json`.
///
/// ```swift
/// let file = try JSONDecoder().decode(TokenizerFile.self, from: Data(contentsOf: url))
/// print(file.model.type) // "BPE"
/// ```
public struct TokenizerFile: Codable, Sendable {
    public var version: String?
    public var addedTokens: [AddedToken]
    public var normalizer: NormalizerConfig?
    public var preTokenizer: PreTokenizerConfig?
    public var model: ModelConfig
    public var postProcessor: PostProcessorConfig?
    public var decoder: DecoderConfig?

    enum CodingKeys: String, CodingKey {
        case version, normalizer, model, decoder
        case addedTokens = "added_tokens", preTokenizer = "pre_tokenizer", postProcessor = "post_processor"
    }

    public init(version: String? = "1.0", addedTokens: [AddedToken] = [], normalizer: NormalizerConfig? = nil,
                preTokenizer: PreTokenizerConfig? = nil, model: ModelConfig, postProcessor: PostProcessorConfig? = nil,
                decoder: DecoderConfig? = nil) {
        self.version = version; self.addedTokens = addedTokens; self.normalizer = normalizer
        self.preTokenizer = preTokenizer; self.model = model; self.postProcessor = postProcessor; self.decoder = decoder
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        version = try c.decodeIfPresent(String.self, forKey: .version)
        addedTokens = try c.decodeIfPresent([AddedToken].self, forKey: .addedTokens) ?? []
        normalizer = try c.decodeIfPresent(NormalizerConfig.self, forKey: .normalizer)
        preTokenizer = try c.decodeIfPresent(PreTokenizerConfig.self, forKey: .preTokenizer)
        model = try c.decode(ModelConfig.self, forKey: .model)
        postProcessor = try c.decodeIfPresent(PostProcessorConfig.self, forKey: .postProcessor)
        self.decoder = try c.decodeIfPresent(DecoderConfig.self, forKey: .decoder)
    }
}

/// One entry of `added_tokens`: matched in the raw (or, when `normalized`, the normalized) input before the model runs.
///
/// ```swift
/// let mask = AddedToken(id: 50264, content: "<mask>", lstrip: true)   // takes the spaces before it
/// file.addedTokens.append(mask)
/// ```
public struct AddedToken: Codable, Sendable, Hashable {
    public var id: Int
    public var content: String
    public var singleWord: Bool
    public var lstrip: Bool
    public var rstrip: Bool
    public var normalized: Bool
    public var special: Bool

    enum CodingKeys: String, CodingKey {
        case id, content, lstrip, rstrip, normalized, special
        case singleWord = "single_word"
    }

    public init(id: Int, content: String, singleWord: Bool = false, lstrip: Bool = false, rstrip: Bool = false,
                normalized: Bool = false, special: Bool = true) {
        self.id = id; self.content = content; self.singleWord = singleWord; self.lstrip = lstrip
        self.rstrip = rstrip; self.normalized = normalized; self.special = special
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        id = try c.decode(Int.self, forKey: .id)
        content = try c.decode(String.self, forKey: .content)
        singleWord = try c.decodeIfPresent(Bool.self, forKey: .singleWord) ?? false
        lstrip = try c.decodeIfPresent(Bool.self, forKey: .lstrip) ?? false
        rstrip = try c.decodeIfPresent(Bool.self, forKey: .rstrip) ?? false
        special = try c.decodeIfPresent(Bool.self, forKey: .special) ?? false
        normalized = try c.decodeIfPresent(Bool.self, forKey: .normalized) ?? !special
    }
}

/// `{"String": " "}` or `{"Regex": "\\s+"}` in Replace and Split.
public struct PatternConfig: Codable, Sendable {
    public var string: String?
    public var regex: String?
    enum CodingKeys: String, CodingKey { case string = "String", regex = "Regex" }
    public init(string: String? = nil, regex: String? = nil) { self.string = string; self.regex = regex }
}

/// A `normalizer`: BertNormalizer, NFC, NFD, NFKC, NFKD, Lowercase, StripAccents, Replace, Prepend, Strip, ByteLevel,
/// Precompiled, Sequence.
///
/// ```swift
/// var n = NormalizerConfig(type: "Sequence")
/// n.normalizers = [NormalizerConfig(type: "NFD"), NormalizerConfig(type: "Lowercase")]
/// ```
public struct NormalizerConfig: Codable, Sendable {
    public var type: String
    public var cleanText: Bool?
    public var handleChineseChars: Bool?
    public var stripAccents: Bool?
    public var lowercase: Bool?
    public var pattern: PatternConfig?
    public var content: String?
    public var prepend: String?
    public var stripLeft: Bool?
    public var stripRight: Bool?
    public var normalizers: [NormalizerConfig]?
    /// `Precompiled`'s SentencePiece charsmap, base64 as in tokenizer.json.
    public var precompiledCharsmap: String?

    enum CodingKeys: String, CodingKey {
        case type, lowercase, pattern, content, prepend, normalizers
        case cleanText = "clean_text", handleChineseChars = "handle_chinese_chars", stripAccents = "strip_accents"
        case stripLeft = "strip_left", stripRight = "strip_right", precompiledCharsmap = "precompiled_charsmap"
    }
    public init(type: String) { self.type = type }
}

/// A `pre_tokenizer`: ByteLevel, BertPreTokenizer, Whitespace, WhitespaceSplit, Metaspace, Split, Digits,
/// Punctuation, Sequence.
public struct PreTokenizerConfig: Codable, Sendable {
    public var type: String
    public var addPrefixSpace: Bool?
    public var trimOffsets: Bool?
    public var useRegex: Bool?
    public var replacement: String?
    public var prependScheme: String?
    public var split: Bool?
    public var pattern: PatternConfig?
    public var behavior: String?
    public var invert: Bool?
    public var individualDigits: Bool?
    /// CharDelimiterSplit's one-character delimiter.
    public var delimiter: String?
    /// FixedLength's chunk size in characters.
    public var length: Int?
    public var pretokenizers: [PreTokenizerConfig]?

    enum CodingKeys: String, CodingKey {
        case type, replacement, split, pattern, behavior, invert, pretokenizers, delimiter, length
        case addPrefixSpace = "add_prefix_space", trimOffsets = "trim_offsets", useRegex = "use_regex"
        case prependScheme = "prepend_scheme", individualDigits = "individual_digits"
    }
    public init(type: String) { self.type = type }
}

/// The `model`: BPE, WordPiece, WordLevel (vocabulary `{token: id}`) or Unigram (vocabulary `[[piece, score]]`).
public struct ModelConfig: Codable, Sendable {
    public var type: String
    /// `{token: id}` for BPE, WordPiece and WordLevel.
    public var vocab: [String: Int]
    /// `[[piece, score]]` for Unigram (ids are positions).
    public var pieces: [UnigramPiece]
    /// BPE merges as pairs, whichever of the two file formats (`"a b"` or `["a", "b"]`) they were read from.
    public var merges: [[String]]
    public var unkToken: String?
    public var unkId: Int?
    public var continuingSubwordPrefix: String?
    public var endOfWordSuffix: String?
    public var maxInputCharsPerWord: Int?
    public var fuseUnk: Bool?
    public var byteFallback: Bool?
    public var ignoreMerges: Bool?

    enum CodingKeys: String, CodingKey {
        case type, vocab, merges
        case unkToken = "unk_token", unkId = "unk_id", continuingSubwordPrefix = "continuing_subword_prefix"
        case endOfWordSuffix = "end_of_word_suffix", maxInputCharsPerWord = "max_input_chars_per_word"
        case fuseUnk = "fuse_unk", byteFallback = "byte_fallback", ignoreMerges = "ignore_merges"
    }

    public init(type: String, vocab: [String: Int] = [:], pieces: [UnigramPiece] = [], merges: [[String]] = []) {
        self.type = type; self.vocab = vocab; self.pieces = pieces; self.merges = merges
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        type = try c.decodeIfPresent(String.self, forKey: .type) ?? "BPE"
        if type == "Unigram" {
            pieces = try c.decodeIfPresent([UnigramPiece].self, forKey: .vocab) ?? []
            vocab = [:]
        } else {
            vocab = try c.decodeIfPresent([String: Int].self, forKey: .vocab) ?? [:]
            pieces = []
        }
        if let pairs = try? c.decodeIfPresent([[String]].self, forKey: .merges) {
            merges = pairs
        } else {
            let lines = try c.decodeIfPresent([String].self, forKey: .merges) ?? []
            merges = lines.map { $0.split(separator: " ", omittingEmptySubsequences: false).map(String.init) }
        }
        // unk_token is a string in BPE/WordPiece/WordLevel and unk_id an integer in Unigram.
        unkToken = try c.decodeIfPresent(String.self, forKey: .unkToken)
        unkId = try c.decodeIfPresent(Int.self, forKey: .unkId)
        continuingSubwordPrefix = try c.decodeIfPresent(String.self, forKey: .continuingSubwordPrefix)
        endOfWordSuffix = try c.decodeIfPresent(String.self, forKey: .endOfWordSuffix)
        maxInputCharsPerWord = try c.decodeIfPresent(Int.self, forKey: .maxInputCharsPerWord)
        fuseUnk = try c.decodeIfPresent(Bool.self, forKey: .fuseUnk)
        byteFallback = try c.decodeIfPresent(Bool.self, forKey: .byteFallback)
        ignoreMerges = try c.decodeIfPresent(Bool.self, forKey: .ignoreMerges)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(type, forKey: .type)
        if type == "Unigram" { try c.encode(pieces, forKey: .vocab) } else { try c.encode(vocab, forKey: .vocab) }
        if type == "BPE" { try c.encode(merges, forKey: .merges) }
        try c.encodeIfPresent(unkToken, forKey: .unkToken)
        try c.encodeIfPresent(unkId, forKey: .unkId)
        try c.encodeIfPresent(continuingSubwordPrefix, forKey: .continuingSubwordPrefix)
        try c.encodeIfPresent(endOfWordSuffix, forKey: .endOfWordSuffix)
        try c.encodeIfPresent(maxInputCharsPerWord, forKey: .maxInputCharsPerWord)
        try c.encodeIfPresent(fuseUnk, forKey: .fuseUnk)
        try c.encodeIfPresent(byteFallback, forKey: .byteFallback)
        try c.encodeIfPresent(ignoreMerges, forKey: .ignoreMerges)
    }
}

/// One Unigram vocabulary entry, `["piece", -3.5]` in the file.
public struct UnigramPiece: Codable, Sendable {
    public var piece: String
    public var score: Double
    public init(piece: String, score: Double) { self.piece = piece; self.score = score }
    public init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        piece = try c.decode(String.self)
        score = try c.decode(Double.self)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(piece)
        try c.encode(score)
    }
}

/// One element of a TemplateProcessing template: `{"SpecialToken": {"id": "[CLS]", "type_id": 0}}` or
/// `{"Sequence": {"id": "A", "type_id": 0}}`.
public struct TemplatePiece: Codable, Sendable {
    public struct Ref: Codable, Sendable {
        public var id: String
        public var typeId: Int
        enum CodingKeys: String, CodingKey { case id, typeId = "type_id" }
    }
    public var specialToken: Ref?
    public var sequence: Ref?
    enum CodingKeys: String, CodingKey { case specialToken = "SpecialToken", sequence = "Sequence" }
}

/// A TemplateProcessing `special_tokens` entry.
public struct TemplateSpecialToken: Codable, Sendable {
    public var id: String
    public var ids: [Int]
    public var tokens: [String]
}

/// A `post_processor`: BertProcessing, RobertaProcessing, TemplateProcessing, ByteLevel, Sequence.
public struct PostProcessorConfig: Codable, Sendable {
    public var type: String
    /// `["[SEP]", 102]` in BertProcessing and RobertaProcessing.
    public var sep: TokenAndId?
    public var cls: TokenAndId?
    public var single: [TemplatePiece]?
    public var pair: [TemplatePiece]?
    public var specialTokens: [String: TemplateSpecialToken]?
    public var processors: [PostProcessorConfig]?
    public var trimOffsets: Bool?
    public var addPrefixSpace: Bool?

    enum CodingKeys: String, CodingKey {
        case type, sep, cls, single, pair, processors
        case specialTokens = "special_tokens", trimOffsets = "trim_offsets", addPrefixSpace = "add_prefix_space"
    }
    public init(type: String) { self.type = type }
}

/// `["[SEP]", 102]`.
public struct TokenAndId: Codable, Sendable {
    public var token: String
    public var id: Int
    public init(token: String, id: Int) { self.token = token; self.id = id }
    public init(from decoder: any Decoder) throws {
        var c = try decoder.unkeyedContainer()
        token = try c.decode(String.self)
        id = try c.decode(Int.self)
    }
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.unkeyedContainer()
        try c.encode(token)
        try c.encode(id)
    }
}

/// A `decoder`: ByteLevel, WordPiece, Metaspace, ByteFallback, Fuse, Strip, Replace, BPEDecoder, Sequence.
public struct DecoderConfig: Codable, Sendable {
    public var type: String
    public var prefix: String?
    public var cleanup: Bool?
    public var replacement: String?
    public var prependScheme: String?
    public var addPrefixSpace: Bool?
    public var pattern: PatternConfig?
    public var content: String?
    public var start: Int?
    public var stop: Int?
    public var suffix: String?
    public var decoders: [DecoderConfig]?
    /// CTC's blank and word-delimiter tokens.
    public var padToken: String?
    public var wordDelimiterToken: String?

    enum CodingKeys: String, CodingKey {
        case type, prefix, cleanup, replacement, pattern, content, start, stop, suffix, decoders
        case prependScheme = "prepend_scheme", addPrefixSpace = "add_prefix_space"
        case padToken = "pad_token", wordDelimiterToken = "word_delimiter_token"
    }
    public init(type: String) { self.type = type }
}

/// The parts of `tokenizer_config.json` (transformers' file) that change what `tokenizer(text)` returns.
///
/// ```swift
/// let config = try JSONDecoder().decode(TokenizerConfig.self, from: Data(contentsOf: configURL))
/// print(config.clsToken ?? "-", config.tokenizerClass ?? "-")
/// ```
public struct TokenizerConfig: Decodable, Sendable {
    public var tokenizerClass: String?
    public var bosToken: String?
    public var eosToken: String?
    public var unkToken: String?
    public var padToken: String?
    public var sepToken: String?
    public var clsToken: String?
    public var maskToken: String?
    public var addBosToken: Bool?
    public var addEosToken: Bool?
    public var modelMaxLength: Double?
    public var modelInputNames: [String]?
    public var doLowerCase: Bool?

    enum CodingKeys: String, CodingKey {
        case tokenizerClass = "tokenizer_class", bosToken = "bos_token", eosToken = "eos_token"
        case unkToken = "unk_token", padToken = "pad_token", sepToken = "sep_token", clsToken = "cls_token"
        case maskToken = "mask_token", addBosToken = "add_bos_token", addEosToken = "add_eos_token"
        case modelMaxLength = "model_max_length", modelInputNames = "model_input_names", doLowerCase = "do_lower_case"
    }

    public init() {}

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        /// A special token is a string or an AddedToken-like object `{"content": "<s>", ...}`.
        func token(_ key: CodingKeys) -> String? {
            if let s = try? c.decodeIfPresent(String.self, forKey: key) { return s }
            struct Content: Decodable { var content: String }
            return (try? c.decodeIfPresent(Content.self, forKey: key))?.content
        }
        tokenizerClass = try? c.decodeIfPresent(String.self, forKey: .tokenizerClass)
        bosToken = token(.bosToken); eosToken = token(.eosToken); unkToken = token(.unkToken)
        padToken = token(.padToken); sepToken = token(.sepToken); clsToken = token(.clsToken)
        maskToken = token(.maskToken)
        addBosToken = try? c.decodeIfPresent(Bool.self, forKey: .addBosToken)
        addEosToken = try? c.decodeIfPresent(Bool.self, forKey: .addEosToken)
        modelMaxLength = try? c.decodeIfPresent(Double.self, forKey: .modelMaxLength)
        modelInputNames = try? c.decodeIfPresent([String].self, forKey: .modelInputNames)
        doLowerCase = try? c.decodeIfPresent(Bool.self, forKey: .doLowerCase)
    }
}
