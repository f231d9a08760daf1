// "Did you mean": the closest known key to a misspelt one, by Levenshtein edit distance.
// Invariant: a suggestion is offered only within a small distance, so unrelated keys get none rather than a wrong one.

/// Levenshtein distance (insertions, deletions, substitutions) between two strings, ignoring case.
///
/// ```swift
/// editDistance("learning_rat", "learning_rate")   // 1
/// ```
public func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a.lowercased().unicodeScalars), b = Array(b.lowercased().unicodeScalars)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            let cost = a[i - 1] == b[j - 1] ? 0 : 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}

/// The candidate closest to `key`, if within `maxDistance` (default: a third of the key's
/// length, at least 1 and at most 4); ties go to the alphabetically first. Other targets' "did you mean" use it too
/// (SpeedTrainer's TrainingArguments).
///
/// ```swift
/// closestKey(to: "stge", in: ["stage", "offload_param"])   // "stage"
/// ```
public func closestKey(to key: String, in candidates: Set<String>, maxDistance: Int? = nil) -> String? {
    let limit = maxDistance ?? min(4, max(1, key.count / 3))
    var best: (key: String, distance: Int)?
    for candidate in candidates.sorted() {
        let d = editDistance(key, candidate)
        if d <= limit, d < (best?.distance ?? Int.max) { best = (candidate, d) }
    }
    return best?.key
}
