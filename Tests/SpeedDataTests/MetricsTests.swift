// Metrics against scikit-learn 1.9 and scipy 1.17 (Fixtures/expected.json, scripts/make_data_fixtures.py): the
// classification and error metrics exactly, the correlations to 1e-12 (scipy's dot products run in BLAS order).
import Foundation
import SpeedCore
@testable import SpeedData
import Testing

@Suite struct MetricsTests {
    nonisolated(unsafe) static let cases = expected["metrics"] as! [[String: Any]]

    func ints(_ any: Any?) -> [Int] { (any as! [NSNumber]).map(\.intValue) }
    func doubles(_ any: Any?) -> [Double] { (any as! [NSNumber]).map(\.doubleValue) }
    func value(_ any: Any?) -> Double { (any as! NSNumber).doubleValue }

    @Test func binaryMetricsMatchScikitLearn() {
        let binary = Self.cases.filter { $0["kind"] as! String == "binary" }
        #expect(binary.count == 5)
        for c in binary {
            let y = ints(c["labels"]), p = ints(c["predictions"])
            #expect(Metrics.accuracy(predictions: p, labels: y) == value(c["accuracy"]))
            let prf = Metrics.precisionRecallF1(predictions: p, labels: y)
            #expect(prf.precision == value(c["precision"]), "\(y) \(p)")
            #expect(prf.recall == value(c["recall"]), "\(y) \(p)")
            #expect(prf.f1 == value(c["f1"]), "\(y) \(p)")
            #expect(Metrics.matthewsCorrelation(predictions: p, labels: y) == value(c["mcc"]), "\(y) \(p)")
        }
    }

    @Test func multiclassAveragesMatchScikitLearn() {
        let multi = Self.cases.filter { $0["kind"] as! String == "multiclass" }
        #expect(multi.count == 4)
        for c in multi {
            let y = ints(c["labels"]), p = ints(c["predictions"])
            #expect(Metrics.accuracy(predictions: p, labels: y) == value(c["accuracy"]))
            #expect(Metrics.matthewsCorrelation(predictions: p, labels: y) == value(c["mcc"]))
            for (name, average) in [("macro", Metrics.Average.macro), ("micro", .micro), ("weighted", .weighted)] {
                let prf = Metrics.precisionRecallF1(predictions: p, labels: y, average: average)
                #expect(prf.precision == value(c["precision_\(name)"]), "\(name) \(y.count)")
                #expect(prf.recall == value(c["recall_\(name)"]), "\(name) \(y.count)")
                #expect(prf.f1 == value(c["f1_\(name)"]), "\(name) \(y.count)")
            }
        }
    }

    @Test func regressionMetricsMatchScikitLearnAndScipy() {
        let reg = Self.cases.filter { $0["kind"] as! String == "regression" }
        #expect(reg.count == 5)
        for c in reg {
            let y = doubles(c["labels"]), p = doubles(c["predictions"])
            #expect(Metrics.meanSquaredError(predictions: p, labels: y) == value(c["mse"]), "n=\(y.count)")
            #expect(Metrics.meanAbsoluteError(predictions: p, labels: y) == value(c["mae"]), "n=\(y.count)")
            #expect(abs(Metrics.pearson(predictions: p, labels: y) - value(c["pearson"])) < 1e-12, "n=\(y.count)")
            #expect(abs(Metrics.spearman(predictions: p, labels: y) - value(c["spearman"])) < 1e-12, "n=\(y.count)")
        }
    }

    @Test func ranksAverageTiesAndCorrelationEdgeCases() {
        #expect(Metrics.averageRanks([3, 1, 2, 2, 5, 2]) == [5, 1, 3, 3, 6, 3])
        #expect(Metrics.pearson(predictions: [1, 1, 1], labels: [1, 2, 3]).isNaN)
        #expect(Metrics.pearson(predictions: [1, 2], labels: [5, 3]) == -1)
        #expect(Metrics.spearman(predictions: [1, 2, 3, 4], labels: [10, 20, 30, 40]) == 1)
    }

    @Test func evalPredictionGivesComputeMetricsShapedResults() {
        let c = Self.cases.first { $0["kind"] as! String == "logits" }!
        let logits = (c["logits"] as! [[NSNumber]]).map { $0.map(\.doubleValue) }
        let labels = ints(c["labels"])
        let p = EvalPrediction(logits: logits, labelIds: labels)
        #expect(p.predictedClasses == ints(c["argmax"]))
        let metrics = Metrics.classification(average: .macro)(p)
        #expect(metrics["accuracy"] == value(c["accuracy"]))
        #expect(metrics["f1"] == value(c["f1_macro"]))
        #expect(Set(metrics.keys) == ["accuracy", "precision", "recall", "f1", "matthews_correlation"])
        // From tensors, as an eval loop holds them.
        let t = EvalPrediction(predictions: Tensor(logits.flatMap { $0.map { Float($0) } }, shape: [4, 3]),
                               labelIds: Tensor(labels, shape: [4]))
        #expect(t.predictedClasses == p.predictedClasses && t.labelClasses == labels)
        let r = EvalPrediction(predictions: Tensor([0.5, 1.5, 2.0] as [Float], shape: [3, 1]), labelIds: Tensor([1.0, 1.0, 2.0] as [Float]))
        let m = Metrics.regression()(r)
        #expect(r.isRegression)
        #expect(m["mse"] == (0.25 + 0.25 + 0) / 3)
        #expect(m["mae"] == (0.5 + 0.5 + 0) / 3)
        #expect(Set(m.keys) == ["mse", "mae", "pearson", "spearmanr"])
    }
}
