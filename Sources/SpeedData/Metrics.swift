// Evaluation metrics over plain arrays, with scikit-learn's and scipy's definitions and edge cases, and
// EvalPrediction → [String: Double] in the shape of Hugging Face's compute_metrics.
// Invariant: sums follow numpy's pairwise order (blocks of 8 lanes), so means match numpy's to the bit.

import SpeedCore

/// scikit-learn's and scipy's metrics.
///
/// ```swift
/// Metrics.accuracy(predictions: [1, 0, 1], labels: [1, 1, 1])                  // 0.666…
/// Metrics.f1(predictions: p, labels: y)                                         // binary, pos_label 1
/// Metrics.f1(predictions: p, labels: y, average: .macro)
/// Metrics.spearman(predictions: scores, labels: gold)                           // ties get average ranks
/// ```
public enum Metrics {
    /// How per-class scores combine, as scikit-learn's `average=`.
    public enum Average: Sendable, Hashable {
        /// The positive class's score only (scikit-learn's default, `pos_label=1`).
        case binary(positiveLabel: Int)
        /// The unweighted mean over every class in the labels or predictions.
        case macro
        /// Global counts of true positives, false negatives and false positives.
        case micro
        /// The mean weighted by each class's number of true instances.
        case weighted

        public static let binary = Average.binary(positiveLabel: 1)
    }

    /// The fraction of predictions equal to their labels (`accuracy_score`).
    public static func accuracy(predictions: [Int], labels: [Int]) -> Double {
        checkLengths(predictions.count, labels.count, "accuracy")
        return numpySum(zip(predictions, labels).map { $0 == $1 ? 1.0 : 0.0 }) / Double(labels.count)
    }

    /// Precision, recall and F1 with `average`, as `precision_recall_fscore_support`; a ratio with a zero
    /// denominator (a class never predicted, or never present) is 0, scikit-learn's `zero_division` default.
    public static func precisionRecallF1(predictions: [Int], labels: [Int], average: Average = .binary)
        -> (precision: Double, recall: Double, f1: Double)
    {
        checkLengths(predictions.count, labels.count, "precisionRecallF1")
        let classes: [Int]
        switch average {
        case .binary(let positive):
            let present = Set(labels).union(predictions)
            precondition(present.count <= 2, "Metrics: average .binary needs at most two classes, got \(present.sorted()); use .macro, .micro or .weighted")
            classes = [positive]
        default:
            classes = Set(labels).union(predictions).sorted()
        }
        var tp = [Double](repeating: 0, count: classes.count)
        var predicted = tp, actual = tp
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        for (p, y) in zip(predictions, labels) {
            if let i = index[p] { predicted[i] += 1; if p == y { tp[i] += 1 } }
            if let i = index[y] { actual[i] += 1 }
        }
        if average == .micro {
            tp = [numpySum(tp)]
            predicted = [numpySum(predicted)]
            actual = [numpySum(actual)]
        }
        func divide(_ a: Double, _ b: Double) -> Double { b == 0 ? 0 : a / b }
        let precision = zip(tp, predicted).map(divide)
        let recall = zip(tp, actual).map(divide)
        let f1 = (0..<tp.count).map { divide(2 * tp[$0], actual[$0] + predicted[$0]) }
        func combine(_ scores: [Double]) -> Double {
            if average == .weighted {
                let total = numpySum(actual)
                return total == 0 ? 0 : numpySum(zip(scores, actual).map(*)) / total
            }
            return numpySum(scores) / Double(scores.count)
        }
        return (combine(precision), combine(recall), combine(f1))
    }

    public static func precision(predictions: [Int], labels: [Int], average: Average = .binary) -> Double {
        precisionRecallF1(predictions: predictions, labels: labels, average: average).precision
    }

    public static func recall(predictions: [Int], labels: [Int], average: Average = .binary) -> Double {
        precisionRecallF1(predictions: predictions, labels: labels, average: average).recall
    }

    public static func f1(predictions: [Int], labels: [Int], average: Average = .binary) -> Double {
        precisionRecallF1(predictions: predictions, labels: labels, average: average).f1
    }

    /// Matthews correlation (`matthews_corrcoef`, multiclass form); 0 when either side has a single class.
    public static func matthewsCorrelation(predictions: [Int], labels: [Int]) -> Double {
        checkLengths(predictions.count, labels.count, "matthewsCorrelation")
        let classes = Set(labels).union(predictions).sorted()
        let index = Dictionary(uniqueKeysWithValues: classes.enumerated().map { ($1, $0) })
        var t = [Double](repeating: 0, count: classes.count), p = t
        var correct = 0.0
        for (yp, yt) in zip(predictions, labels) {
            t[index[yt]!] += 1
            p[index[yp]!] += 1
            if yp == yt { correct += 1 }
        }
        let n = Double(labels.count)
        let dot = { (a: [Double], b: [Double]) in numpySum(zip(a, b).map(*)) }
        let covTP = correct * n - dot(t, p)
        let covPP = n * n - dot(p, p)
        let covTT = n * n - dot(t, t)
        guard covPP * covTT != 0 else { return 0 }
        return covTP / (covTT * covPP).squareRoot()
    }

    /// `mean_squared_error`.
    public static func meanSquaredError(predictions: [Double], labels: [Double]) -> Double {
        checkLengths(predictions.count, labels.count, "meanSquaredError")
        return numpySum(zip(labels, predictions).map { ($0 - $1) * ($0 - $1) }) / Double(labels.count)
    }

    /// `mean_absolute_error`.
    public static func meanAbsoluteError(predictions: [Double], labels: [Double]) -> Double {
        checkLengths(predictions.count, labels.count, "meanAbsoluteError")
        return numpySum(zip(labels, predictions).map { abs($0 - $1) }) / Double(labels.count)
    }

    /// Pearson's r as `scipy.stats.pearsonr` computes it (centred, scaled by the largest deviation, normalised);
    /// NaN when either side is constant, exactly ±1 for two points.
    public static func pearson(predictions: [Double], labels: [Double]) -> Double {
        checkLengths(predictions.count, labels.count, "pearson")
        precondition(labels.count >= 2, "Metrics.pearson: needs at least 2 values, got \(labels.count)")
        let x = predictions, y = labels
        if x.allSatisfy({ $0 == x[0] }) || y.allSatisfy({ $0 == y[0] }) { return .nan }
        let n = Double(x.count)
        let xMean = numpySum(x) / n, yMean = numpySum(y) / n
        let xm = x.map { $0 - xMean }, ym = y.map { $0 - yMean }
        func norm(_ v: [Double]) -> Double {
            let m = v.map(abs).max()!
            return m * numpySum(v.map { ($0 / m) * ($0 / m) }).squareRoot()
        }
        let nx = norm(xm), ny = norm(ym)
        let r = numpySum(zip(xm, ym).map { ($0 / nx) * ($1 / ny) })
        if x.count == 2 { return r < 0 ? -1 : 1 }
        return Swift.min(1, Swift.max(-1, r))
    }

    /// Spearman's rank correlation (`scipy.stats.spearmanr`): Pearson's r of the ranks, ties given their average rank.
    public static func spearman(predictions: [Double], labels: [Double]) -> Double {
        pearson(predictions: averageRanks(predictions), labels: averageRanks(labels))
    }

    /// 1-based ranks, ties sharing the mean of their positions (`scipy.stats.rankdata(method="average")`).
    public static func averageRanks(_ values: [Double]) -> [Double] {
        let order = values.indices.sorted { values[$0] < values[$1] || (values[$0] == values[$1] && $0 < $1) }
        var ranks = [Double](repeating: 0, count: values.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && values[order[j + 1]] == values[order[i]] { j += 1 }
            let rank = Double(i + j + 2) / 2
            for k in i...j { ranks[order[k]] = rank }
            i = j + 1
        }
        return ranks
    }

    static func checkLengths(_ a: Int, _ b: Int, _ what: String) {
        precondition(a == b && a > 0, "Metrics.\(what): \(a) predictions and \(b) labels; they need the same, non-zero count")
    }

    /// numpy's `add.reduce` order for a contiguous float64 array: its pairwise sum (under 8 values left to right;
    /// blocks of up to 128 summed in 8 lanes; longer runs split in halves), added to the identity 0.
    static func numpySum(_ a: [Double]) -> Double {
        a.withUnsafeBufferPointer { 0 + pairwise($0.baseAddress!, a.count) }
    }

    static func pairwise(_ a: UnsafePointer<Double>, _ n: Int) -> Double {
        if n < 8 {
            var s = 0.0
            for i in 0..<n { s += a[i] }
            return s
        }
        if n <= 128 {
            var r = (0..<8).map { a[$0] }
            var i = 8
            while i < n - n % 8 {
                for k in 0..<8 { r[k] += a[i + k] }
                i += 8
            }
            var s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
            while i < n { s += a[i]; i += 1 }
            return s
        }
        var half = n / 2
        half -= half % 8
        return pairwise(a, half) + pairwise(a + half, n - half)
    }
}

/// What evaluation produced, as transformers' `EvalPrediction`: `predictions` are logits `[N, C]` (classification)
/// or values `[N]` / `[N, 1]` (regression), `labelIds` the targets `[N]`.
///
/// ```swift
/// let p = EvalPrediction(predictions: logits, labelIds: labels)     // Tensors from the eval loop
/// let metrics = Metrics.classification()(p)   // ["accuracy": 0.91, "f1": 0.90, …]
/// ```
public struct EvalPrediction: Sendable {
    /// Row-major predictions with shape `predictionShape`.
    public var predictions: [Double]
    public var predictionShape: [Int]
    public var labelIds: [Double]

    /// Logits `[N][C]` and class ids.
    public init(logits: [[Double]], labelIds: [Int]) {
        precondition(logits.allSatisfy { $0.count == logits.first?.count }, "EvalPrediction: logit rows have different lengths")
        predictions = logits.flatMap { $0 }
        predictionShape = [logits.count, logits.first?.count ?? 0]
        self.labelIds = labelIds.map(Double.init)
    }

    /// Regression predictions `[N]` and targets.
    public init(values: [Double], labels: [Double]) {
        predictions = values
        predictionShape = [values.count]
        labelIds = labels
    }

    /// Tensors from an evaluation loop: predictions `[N, C]`, `[N, 1]` or `[N]`, labels `[N]`.
    public init(predictions: Tensor, labelIds: Tensor) {
        precondition(predictions.shape.count == 1 || predictions.shape.count == 2, "EvalPrediction: predictions are [N] or [N, C], got \(predictions.shape)")
        self.predictions = predictions.scalars(as: Double.self)
        predictionShape = predictions.shape
        self.labelIds = labelIds.scalars(as: Double.self)
        precondition(self.labelIds.count == predictionShape[0], "EvalPrediction: \(predictionShape[0]) predictions but \(self.labelIds.count) labels")
    }

    /// Whether the predictions are one value per row (`[N]` or `[N, 1]`: regression).
    public var isRegression: Bool { predictionShape.count == 1 || predictionShape[1] == 1 }

    /// The arg-max class of each row (the first of equal maxima, as numpy's argmax).
    public var predictedClasses: [Int] {
        precondition(!isRegression, "EvalPrediction: predictions \(predictionShape) are one value per row, not logits")
        let c = predictionShape[1]
        return (0..<predictionShape[0]).map { r in
            var best = 0
            for k in 1..<c where predictions[r * c + k] > predictions[r * c + best] { best = k }
            return best
        }
    }

    public var labelClasses: [Int] { labelIds.map { Int($0) } }
}

/// A `compute_metrics` function: predictions in, named values out (the Trainer prefixes `eval_`).
public typealias ComputeMetrics = @Sendable (EvalPrediction) -> [String: Double]

extension Metrics {
    /// Classification metrics from logits: `accuracy`, `precision`, `recall`, `f1` (with `average`) and
    /// `matthews_correlation`, GLUE's names.
    public static func classification(average: Average = .binary) -> ComputeMetrics {
        { p in
            let predicted = p.predictedClasses, labels = p.labelClasses
            let prf = precisionRecallF1(predictions: predicted, labels: labels, average: average)
            return ["accuracy": accuracy(predictions: predicted, labels: labels), "precision": prf.precision,
                    "recall": prf.recall, "f1": prf.f1,
                    "matthews_correlation": matthewsCorrelation(predictions: predicted, labels: labels)]
        }
    }

    /// Regression metrics: `mse`, `mae`, `pearson`, `spearmanr` (STS-B's names).
    public static func regression() -> ComputeMetrics {
        { p in
            precondition(p.isRegression, "Metrics.regression: predictions \(p.predictionShape) are logits; use Metrics.classification")
            let y = p.labelIds, v = p.predictions
            return ["mse": meanSquaredError(predictions: v, labels: y), "mae": meanAbsoluteError(predictions: v, labels: y),
                    "pearson": pearson(predictions: v, labels: y), "spearmanr": spearman(predictions: v, labels: y)]
        }
    }
}
