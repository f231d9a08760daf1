// Every LR schedule against sequences recorded from DeepSpeed 0.19 itself (Fixtures/lr_schedules.json).
// Invariant: the fixture is regenerated only by scripts/gen_lr_fixtures.py; values must match to 1e-12 relative.

import Foundation
import Testing
import SpeedOptim

struct LRFixtureCase: Decodable, Sendable, CustomTestStringConvertible {
    var name: String
    var type: String
    var params: LRScheduleParams
    var baseLR: Double
    var lr: [Double]?
    var beta1: [Double]?
    var error: String?

    var testDescription: String { name }

    enum CodingKeys: String, CodingKey {
        case name, type, params, baseLR = "base_lr", lr, beta1, error
    }
}

struct LRFixture: Decodable {
    var deepspeedVersion: String
    var cases: [LRFixtureCase]

    enum CodingKeys: String, CodingKey { case deepspeedVersion = "deepspeed_version", cases }

    static let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/lr_schedules.json")

    static let shared: LRFixture = {
        do {
            return try JSONDecoder().decode(LRFixture.self, from: Data(contentsOf: url))
        } catch {
            fatalError("cannot read \(url.path): \(error)")
        }
    }()
}

/// |a − b| ≤ 1e-12 · max(|a|, |b|) (exact equality for zeros).
func lrMatches(_ a: Double, _ b: Double, _ tolerance: Double = 1e-12) -> Bool {
    a == b || abs(a - b) <= tolerance * max(abs(a), abs(b))
}

@Suite struct LRScheduleFixtureTests {
    @Test func fixtureCoversEveryTypeAndComesFromDeepSpeed019() {
        let fixture = LRFixture.shared
        #expect(fixture.deepspeedVersion.hasPrefix("0.19"))
        #expect(Set(fixture.cases.map(\.type)) == Set(LRScheduleType.allCases.map(\.rawValue)))
        #expect(fixture.cases.count >= 30)
    }

    @Test(arguments: LRFixture.shared.cases)
    func matchesDeepSpeed(_ c: LRFixtureCase) throws {
        let type = try #require(LRScheduleType(rawValue: c.type))
        if let message = c.error {
            let error = #expect(throws: LRScheduleError.self) {
                try c.params.makeScheduler(type, baseLR: c.baseLR)
            }
            #expect(error.map { message.contains($0.key) } == true, "DeepSpeed said: \(message)")
            return
        }
        let expected = try #require(c.lr)
        let schedule = try c.params.makeScheduler(type, baseLR: c.baseLR)
        let optimizer = ScheduleProbeOptimizer(lr: 123, betas: (0.5, 0.999))
        schedule.apply(to: optimizer)
        for (k, want) in expected.enumerated() {
            if k > 0 { schedule.step(); schedule.apply(to: optimizer) }
            #expect(schedule.lastBatchIteration == k - 1)
            #expect(lrMatches(schedule.lr, want), "step \(k + 1): \(schedule.lr) != DeepSpeed \(want)")
            #expect(optimizer.lr == schedule.lr)
            if let betas = c.beta1 {
                let b1 = try #require(schedule.beta1)
                #expect(lrMatches(b1, betas[k]), "beta1 at step \(k + 1): \(b1) != DeepSpeed \(betas[k])")
                #expect(optimizer.betas?.0 == b1 && optimizer.betas?.1 == 0.99)   // DeepSpeed sets (mom, 0.99)
            } else {
                #expect(schedule.beta1 == nil)
                #expect(optimizer.betas?.0 == 0.5)
            }
        }
        // The stateless view gives the same sequence without stepping.
        let fresh = try c.params.makeScheduler(type, baseLR: c.baseLR)
        let sequence = fresh.lrs(count: expected.count)
        #expect(zip(sequence, expected).allSatisfy { lrMatches($0, $1) })
        #expect(fresh.lastBatchIteration == -1)
    }
}
