// The tokenizer: HF's pipeline (added tokens, normalizer, pre-tokenizer, model, post-processor, decoder) over one
// tokenizer.json, giving the ids Hugging Face `tokenizers` gives.
// Invariant: a Tokenizer is immutable after init apart from the BPE word cache (behind a Mutex), so one instance may
// encode from many tasks at once.
import Foundation

/// A Hugging Face tokenizer read from `tokenizer.json` (and, when present, `tokenizer_config.json`).
///
/// ```swift
/// let tok = try Tokenizer(contentsOf: URL(fileURLWithPath: "models/bert"))   // folder or tokenizer.json
/// let e = tok.encode("Hello world!", pair: "Second.")
/// print(e.ids, e.typeIds)
/// print(tok.decode(e.ids))        // "hello world! second."
/// ```
public final class Tokenizer: Sendable {
    /// The tokenizer.json this tokenizer was built from, whole.
    public let file: TokenizerFile
    /// tokenizer_config.json, when it was found.
    public let config: TokenizerConfig?
    let normalizer: Normalizer?
    let preTokenizer: PreTokenizer?
    let model: any TokenModel
    let postProcessor: PostProcessor?
    let decoder: TokenDecoder?
    let added: AddedVocabulary

    /// Builds the pipeline from a decoded tokenizer.json. Throws `TokenizerError` naming the unsupported or invalid key.
    ///
    /// ```swift
    /// let file = try JSONDecoder().decode(TokenizerFile.self, from: data)
    /// let tok = try Tokenizer(file: file)
    /// ```
    public init(file: TokenizerFile, config: TokenizerConfig? = nil) throws {
        self.file = file
        self.config = config
        normalizer = try file.normalizer.map { try Normalizer($0) }
        preTokenizer = try file.preTokenizer.map { try PreTokenizer($0) }
        switch file.model.type {
        case "BPE": model = try BPEModel(file.model)
        case "WordPiece": model = try WordPieceModel(file.model)
        case "WordLevel": model = try WordLevelModel(file.model)
        case "Unigram": model = try UnigramModel(file.model)
        default: throw TokenizerError.unsupported(key: "model", type: file.model.type)
        }
        postProcessor = try file.postProcessor.map { try PostProcessor($0) }
        decoder = try file.decoder.map { try TokenDecoder($0) }
        added = AddedVocabulary(file.addedTokens, normalizer: normalizer)
    }

    /// Reads `url`: a tokenizer.json, or a folder holding tokenizer.json and optionally tokenizer_config.json — or,
    /// as `AutoTokenizer` does for GPT-2's older folders, only `vocab.json` and `merges.txt`.
    ///
    /// ```swift
    /// let tok = try Tokenizer(contentsOf: URL(fileURLWithPath: "tokenizer.json"))
    /// ```
    public convenience init(contentsOf url: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDir) else {
            throw TokenizerError.unreadable(path: url.path, reason: "no such file or folder")
        }
        let fileURL = isDir.boolValue ? url.appendingPathComponent("tokenizer.json") : url
        if isDir.boolValue, !FileManager.default.fileExists(atPath: fileURL.path) {
            try self.init(legacyFolder: url)
            return
        }
        let configURL = fileURL.deletingLastPathComponent().appendingPathComponent("tokenizer_config.json")
        let data: Data
        do { data = try Data(contentsOf: fileURL) } catch {
            throw TokenizerError.unreadable(path: fileURL.path, reason: error.localizedDescription)
        }
        let file: TokenizerFile
        do { file = try JSONDecoder().decode(TokenizerFile.self, from: data) } catch {
            throw TokenizerError.malformed(path: fileURL.path, reason: Tokenizer.describe(error))
        }
        var config: TokenizerConfig? = nil
        if let d = try? Data(contentsOf: configURL) {
            do { config = try JSONDecoder().decode(TokenizerConfig.self, from: d) } catch {
                throw TokenizerError.malformed(path: configURL.path, reason: Tokenizer.describe(error))
            }
        }
        try self.init(file: file, config: config)
    }

    /// GPT-2's original pair of files, `vocab.json` (a.k.a. encoder.json) and `merges.txt` (a.k.a. vocab.bpe), with
    /// the pipeline of GPT-2's tokenizer.json: byte-level BPE and `<|endoftext|>` as the special token.
    ///
    /// ```swift
    /// let gpt2 = try Tokenizer(gpt2Vocabulary: dir.appendingPathComponent("vocab.json"),
    ///                          merges: dir.appendingPathComponent("merges.txt"))
    /// gpt2.encode("Hello world").ids // [15496, 995]
    /// ```
    public convenience init(gpt2Vocabulary vocabURL: URL, merges mergesURL: URL, specialTokens: [String] = ["<|endoftext|>"]) throws {
        try self.init(gpt2Vocabulary: vocabURL, merges: mergesURL, specialTokens: specialTokens, requireSpecialTokens: true)
    }

    /// The pair as above; without `requireSpecialTokens`, a special token the vocabulary lacks is left out.
    convenience init(gpt2Vocabulary vocabURL: URL, merges mergesURL: URL, specialTokens: [String],
                     requireSpecialTokens: Bool) throws {
        let vocab: [String: Int]
        do { vocab = try JSONDecoder().decode([String: Int].self, from: Data(contentsOf: vocabURL)) } catch {
            throw TokenizerError.malformed(path: vocabURL.path, reason: "expected a {token: id} object (\(Tokenizer.describe(error)))")
        }
        let text: String
        do { text = try String(contentsOf: mergesURL, encoding: .utf8) } catch {
            throw TokenizerError.unreadable(path: mergesURL.path, reason: error.localizedDescription)
        }
        let merges = text.split(separator: "\n", omittingEmptySubsequences: true).filter { !$0.hasPrefix("#version") }
            .map { $0.split(separator: " ", omittingEmptySubsequences: false).map(String.init) }
        var added: [AddedToken] = []
        for s in specialTokens {
            guard let id = vocab[s] else {
                if !requireSpecialTokens { continue }
                throw TokenizerError.invalid(key: "\(vocabURL.lastPathComponent): \(s)", reason: "special token \(s) is not in the vocabulary; pass specialTokens: [] or the right names")
            }
            added.append(AddedToken(id: id, content: s, normalized: true, special: true))
        }
        var byteLevel = PreTokenizerConfig(type: "ByteLevel")
        byteLevel.addPrefixSpace = false
        byteLevel.useRegex = true
        byteLevel.trimOffsets = true
        try self.init(file: TokenizerFile(addedTokens: added, preTokenizer: byteLevel,
                                          model: ModelConfig(type: "BPE", vocab: vocab, merges: merges),
                                          postProcessor: PostProcessorConfig(type: "ByteLevel"),
                                          decoder: DecoderConfig(type: "ByteLevel")))
    }

    /// A folder without tokenizer.json: GPT-2's `vocab.json` + `merges.txt` (what transformers' GPT2TokenizerFast
    /// converts), `<|endoftext|>` special when the vocabulary has it.
    convenience init(legacyFolder url: URL) throws {
        let vocab = url.appendingPathComponent("vocab.json"), merges = url.appendingPathComponent("merges.txt")
        let fm = FileManager.default
        guard fm.fileExists(atPath: vocab.path), fm.fileExists(atPath: merges.path) else {
            throw TokenizerError.unreadable(path: url.appendingPathComponent("tokenizer.json").path,
                                            reason: "the folder has no tokenizer.json (nor GPT-2's vocab.json + merges.txt); save the tokenizer with transformers' save_pretrained, which writes tokenizer.json")
        }
        let configURL = url.appendingPathComponent("tokenizer_config.json")
        if let d = try? Data(contentsOf: configURL),
           let cls = (try? JSONDecoder().decode(TokenizerConfig.self, from: d))?.tokenizerClass,
           !cls.hasPrefix("GPT2Tokenizer") {
            throw TokenizerError.invalid(key: "\(configURL.path): tokenizer_class",
                                         reason: "\(cls) from vocab.json + merges.txt is not supported (only GPT2Tokenizer); save the tokenizer with transformers' save_pretrained, which writes tokenizer.json")
        }
        try self.init(gpt2Vocabulary: vocab, merges: merges, specialTokens: ["<|endoftext|>"], requireSpecialTokens: false)
    }

    static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let k, let ctx):
            return "missing key \((ctx.codingPath + [k]).map(\.stringValue).joined(separator: "."))"
        case DecodingError.typeMismatch(_, let ctx), DecodingError.valueNotFound(_, let ctx):
            return "wrong type at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)"
        case DecodingError.dataCorrupted(let ctx):
            return "invalid JSON at \(ctx.codingPath.map(\.stringValue).joined(separator: ".")): \(ctx.debugDescription)"
        default: return "\(error)"
        }
    }

    // MARK: Vocabulary

    /// The id of `token` (added tokens first, then the model's vocabulary).
    ///
    /// ```swift
    /// bert.id(of: "[MASK]")   // 103
    /// ```
    public func id(of token: String) -> Int? {
        let k = Array(token.utf8)
        return added.byContent[k]?.id ?? model.id(of: k)
    }

    /// The token of `id` (added tokens first, then the model's vocabulary).
    ///
    /// ```swift
    /// gpt2.token(of: 50256)   // "<|endoftext|>"
    /// ```
    public func token(of id: Int) -> String? { added.byId[id]?.content ?? model.token(of: id) }

    /// The model's vocabulary size plus added tokens not in it, as HF's `get_vocab_size(with_added_tokens=True)`.
    public var vocabularySize: Int {
        model.vocabularySize + added.byId.values.filter { model.id(of: Array($0.content.utf8)) == nil }.count
    }

    /// Whether transformers' `tokenizer(text)` returns `token_type_ids`: tokenizer_config.json's `model_input_names`
    /// when given, else its `tokenizer_class` (the BERT family and DeBERTa do, GPT-2, RoBERTa, DistilBERT, Llama...
    /// do not), else (no config) a post-processor that gives the pair type id 1.
    ///
    /// ```swift
    /// bert.returnsTokenTypeIds   // true (tokenizer_class BertTokenizer)
    /// ```
    public var returnsTokenTypeIds: Bool {
        if let names = config?.modelInputNames { return names.contains("token_type_ids") }
        if let cls = config?.tokenizerClass?.replacingOccurrences(of: "Fast", with: "") {
            // The classes whose `model_input_names` has token_type_ids in transformers 5 (all others lack it).
            let with = ["BertTokenizer", "ElectraTokenizer", "MobileBertTokenizer", "ConvBertTokenizer",
                        "SqueezeBertTokenizer", "LayoutLMTokenizer", "DPRContextEncoderTokenizer",
                        "DPRQuestionEncoderTokenizer", "DebertaTokenizer", "DebertaV2Tokenizer", "FNetTokenizer",
                        "CanineTokenizer", "TapasTokenizer", "LayoutLMv2Tokenizer", "MarkupLMTokenizer"]
            return with.contains(cls)
        }
        return postProcessor?.usesTypeIds ?? false
    }

    // MARK: Encoding

    /// Encodes `text` (and `pair`) as HF's `tokenizer.encode(text, pair, add_special_tokens=...)`.
    ///
    /// ```swift
    /// let e = tok.encode("[CLS] is typed here", addSpecialTokens: false)
    /// ```
    public func encode(_ text: String, pair: String? = nil, addSpecialTokens: Bool = true,
                       truncation: Truncation? = nil) -> Encoding {
        var a = encodeSequence(text, typeId: 0, sequence: 0)
        var b = pair.map { encodeSequence($0, typeId: 1, sequence: 1) }
        if let truncation {
            truncation.apply(&a, &b, added: addSpecialTokens ? (postProcessor?.addedTokens(pair: b != nil) ?? 0) : 0)
        }
        guard let postProcessor else {
            var out = a
            if let b { out.append(b) }
            return out
        }
        return postProcessor.process(a, b, addSpecialTokens: addSpecialTokens)
    }

    /// Encodes many texts on `threads` threads (default: all cores), truncating each, then pads them together.
    ///
    /// ```swift
    /// let batch = tok.encodeBatch(["short", "a longer text"], padding: Padding(strategy: .longest, padToken: "[PAD]"))
    /// ```
    public func encodeBatch(_ texts: [String], pairs: [String]? = nil, addSpecialTokens: Bool = true,
                            padding: Padding? = nil, truncation: Truncation? = nil, threads: Int? = nil) -> [Encoding] {
        precondition(pairs == nil || pairs!.count == texts.count, "encodeBatch: \(texts.count) texts but \(pairs!.count) pairs")
        let results = UnsafeMutableBufferPointer<Encoding>.allocate(capacity: texts.count)
        results.initialize(repeating: Encoding())
        defer { results.deinitialize(); results.deallocate() }
        // Each chunk writes only its own slots.
        nonisolated(unsafe) let out = results
        let chunks = max(1, min(texts.count, threads ?? ProcessInfo.processInfo.activeProcessorCount))
        DispatchQueue.concurrentPerform(iterations: chunks) { c in
            for i in stride(from: c, to: texts.count, by: chunks) {
                out[i] = encode(texts[i], pair: pairs?[i], addSpecialTokens: addSpecialTokens, truncation: truncation)
            }
        }
        var encodings = Array(results)
        if let padding {
            var target: Int
            switch padding.strategy {
            case .longest: target = encodings.map(\.count).max() ?? 0
            case .fixed(let n): target = n
            }
            if let m = padding.padToMultipleOf, m > 0, target % m != 0 { target += m - target % m }
            for i in encodings.indices {
                encodings[i].pad(to: target, id: padding.padId, token: padding.padToken, typeId: padding.padTypeId,
                                 left: padding.left)
            }
        }
        return encodings
    }

    /// One sequence without special tokens: added tokens, then normalizer, pre-tokenizer and model on the rest.
    /// Offsets are tracked from the original text through every step; each added token and each pre-tokenizer
    /// piece is one word.
    func encodeSequence(_ text: String, typeId: Int, sequence: Int) -> Encoding {
        var out = Encoding()
        let scalars = text.scalars
        var word = 0
        func emitAdded(_ id: Int, _ matched: ArraySlice<Unicode.Scalar>, _ span: Range<Int>) {
            // An added token's token is the text it matched (with what lstrip/rstrip took), as in HF.
            out.append(id: id, token: String(matched), typeId: typeId, special: false, offsets: span, word: word,
                       sequence: sequence)
            word += 1
        }
        for (range, addedId) in added.split(scalars, normalizedPass: false) where !range.isEmpty {
            if let addedId { emitAdded(addedId, scalars[range], range); continue }
            var piece = range.count == scalars.count ? NormalizedText(scalars) : NormalizedText(Array(scalars[range]), base: range.lowerBound)
            normalizer?.apply(&piece)
            let subs = added.split(piece.scalars, normalizedPass: true)
            for (sub, subId) in subs where !sub.isEmpty {
                if let subId { emitAdded(subId, piece.scalars[sub], piece.original(sub)); continue }
                let text = subs.count == 1 ? piece : piece.slice(sub)
                for w in preTokenizer?.apply([text]) ?? [text] where !w.isEmpty {
                    for t in model.tokenize(w.scalars) {
                        out.append(id: t.id, token: t.value ?? token(of: t.id) ?? "", typeId: typeId, special: false,
                                   offsets: w.original(t.start..<t.end), word: word, sequence: sequence)
                    }
                    word += 1
                }
            }
        }
        return out
    }

    // MARK: Decoding

    /// Text of `ids`, as HF's `decode(ids, skip_special_tokens=...)` (unknown ids are dropped).
    ///
    /// ```swift
    /// tok.decode([101, 7592, 102])                          // "hello"
    /// tok.decode([101, 7592, 102], skipSpecialTokens: false) // "[CLS] hello [SEP]"
    /// ```
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = true) -> String {
        let tokens = ids.compactMap { id -> String? in
            if let t = added.byId[id] { return skipSpecialTokens && t.special ? nil : t.content }
            return model.token(of: id)
        }
        guard let decoder else { return tokens.joined(separator: " ") }
        return decoder.decodeChain(tokens).joined()
    }
}
