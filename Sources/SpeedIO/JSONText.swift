// JSON string literals for the headers and metadata SpeedIO writes by hand (safetensors, checkpoint tags).
// Invariant: the output is what Python's json.dumps(s, ensure_ascii=False) writes, so files match byte for byte.

import Foundation

package enum JSONText {
    /// `s` as a JSON string literal: quotes, backslashes and control characters escaped, the rest as UTF-8.
    package static func quoted(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case let c where c.value < 0x20: out += String(format: "\\u%04x", c.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}
