// `swiftspeed tokenize --tokenizer PATH`: one JSON line of ids per stdin line, what transformers' `tokenizer(line)` gives.
// Invariant: only "\n" ends a line (a "\r" before it stays part of the text), a TAB splits text from text_pair, and the
// truncation and padding stored in tokenizer.json are ignored, as `tokenizer(line)` ignores them.

import ArgumentParser
import Foundation
import SpeedTokenizers

/// `swiftspeed tokenize --tokenizer models/bert < lines.txt`
///
/// ```
/// $ printf 'Hello world\nQuestion?\tAnswer.\n' | swiftspeed tokenize --tokenizer models/bert
/// {"input_ids":[101,7592,2088,102],"token_type_ids":[0,0,0,0],"attention_mask":[1,1,1,1]}
/// {"input_ids":[101,3160,1029,102,3437,1012,102],"token_type_ids":[0,0,0,0,1,1,1],"attention_mask":[1,1,1,1,1,1,1]}
/// $ echo 'Héllo wörld' | swiftspeed tokenize --tokenizer models/bert --offsets
/// {"input_ids":[101,7592,2088,102],"token_type_ids":[0,0,0,0],"attention_mask":[1,1,1,1],"offset_mapping":[[0,0],[0,5],[6,11],[0,0]]}
/// ```
struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Tokenize stdin lines with a Hugging Face tokenizer.json, one JSON object of ids per line.",
        discussion: """
            PATH is a tokenizer.json, or a folder holding tokenizer.json (and optionally tokenizer_config.json), \
            or a folder holding GPT-2's vocab.json and merges.txt. Each UTF-8 line of stdin gives \
            {"input_ids": [...], "attention_mask": [...]}, plus "token_type_ids" where transformers returns them \
            (BERT-style tokenizers): the ids of transformers' tokenizer(line), special tokens included. A TAB in a \
            line makes it a pair (text, text_pair); special tokens typed in the text ([MASK], <|endoftext|>) are \
            matched as special tokens. --offsets adds "offset_mapping", transformers' return_offsets_mapping=True: \
            [start, end] in characters (code points) of the text each token came from ([0, 0] for special tokens; \
            in a pair, the second text's offsets count from the character after the TAB).
            """)

    @Option(help: "A tokenizer.json, or a folder with tokenizer.json (or GPT-2's vocab.json + merges.txt).")
    var tokenizer: String
    @Flag(help: "Do not add the post-processor's special tokens ([CLS], [SEP], <s>...).")
    var noSpecialTokens = false
    @Flag(help: "Also print each line's tokens as \"tokens\".")
    var tokens = false
    @Flag(help: "Also print each token's [start, end] character offsets as \"offset_mapping\" ([0, 0] for special tokens).")
    var offsets = false

    func run() throws {
        let tok = try Tokenize.load(tokenizer)
        let typeIds = tok.returnsTokenTypeIds
        let out = FileHandle.standardOutput
        while var line = readLine(strippingNewline: false) {
            // By code point: "\r\n" is one Character, and its "\r" is text.
            if line.unicodeScalars.last == "\n" { line.unicodeScalars.removeLast() }
            let e = Tokenize.encode(line, with: tok, addSpecialTokens: !noSpecialTokens)
            out.write(Data((Tokenize.json(e, typeIds: typeIds, tokens: tokens, offsets: offsets) + "\n").utf8))
        }
    }

    static func encode(_ line: String, with tok: Tokenizer, addSpecialTokens: Bool = true) -> Encoding {
        if let tab = line.firstIndex(of: "\t") {
            return tok.encode(String(line[..<tab]), pair: String(line[line.index(after: tab)...]),
                              addSpecialTokens: addSpecialTokens)
        }
        return tok.encode(line, addSpecialTokens: addSpecialTokens)
    }

    /// A tokenizer.json, or a folder (tokenizer.json, or GPT-2's legacy vocab.json + merges.txt).
    static func load(_ path: String) throws -> Tokenizer { try Tokenizer(contentsOf: URL(fileURLWithPath: path)) }

    /// transformers' key order: input_ids, token_type_ids, attention_mask, offset_mapping (then our tokens).
    static func json(_ e: Encoding, typeIds: Bool, tokens: Bool, offsets: Bool = false) -> String {
        func list(_ a: [Int]) -> String { "[" + a.map(String.init).joined(separator: ",") + "]" }
        var s = "{\"input_ids\":\(list(e.ids))"
        if typeIds { s += ",\"token_type_ids\":\(list(e.typeIds))" }
        s += ",\"attention_mask\":\(list(e.attentionMask))"
        if offsets {
            s += ",\"offset_mapping\":[" + e.offsetMapping.map { "[\($0.0),\($0.1)]" }.joined(separator: ",") + "]"
        }
        if tokens {
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            if let data = try? encoder.encode(e.tokens) { s += ",\"tokens\":" + String(decoding: data, as: UTF8.self) }
        }
        return s + "}"
    }
}
