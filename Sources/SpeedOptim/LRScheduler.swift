// The LR-scheduler contract (DeepSpeed's lr_schedules.py): a counter, a learning rate per count, checkpointable state.
// Invariant: `lr` is a pure function of `lastBatchIteration` (−1 = just constructed), so loading state restores it exactly.

/// A learning-rate schedule stepped once per *applied* optimizer step, like DeepSpeed's schedulers.
///
/// The observable sequence is DeepSpeed's: a new scheduler has ``lastBatchIteration`` −1 and
/// already holds its construction-time ``lr`` (optimizer step 1 runs at it); every ``step()``
/// increments the counter and then computes the LR for it, so optimizer step k ≥ 2 runs at the LR
/// for iteration k − 2. The construction-time LR is not always the iteration-0 value (OneCycle).
///
/// Schedulers do **not** know about skipped steps: on an fp16 overflow the engine skips the
/// update and must not call ``step()`` (DeepSpeed's engine does the same).
///
/// ```swift
/// let schedule = try WarmupLR(minLR: 0, maxLR: 1e-3, warmupNumSteps: 10, warmupType: .log)
/// schedule.apply(to: optimizer)          // step 1 runs at 0
/// for batch in batches {
///     train(batch)                       // optimizer.update(…) with optimizer.lr
///     if !overflowed { schedule.step(); schedule.apply(to: optimizer) }
/// }
/// ```
public protocol LRScheduler: AnyObject {
    /// DeepSpeed's type name: "WarmupLR", "WarmupDecayLR", "WarmupCosineLR", "OneCycle", "LRRangeTest".
    var typeName: String { get }
    /// Index of the last batch stepped; −1 before the first ``step()`` (settable, like DeepSpeed's `last_batch_iteration`).
    var lastBatchIteration: Int { get set }
    /// The learning rate this schedule sets after `iteration` steps (−1 = at construction).
    func lr(at iteration: Int) -> Double
    /// Beta1 (momentum) this schedule sets at `iteration`, or nil when it does not cycle momentum.
    func beta1(at iteration: Int) -> Double?
    /// Advances the counter by one (call after every applied optimizer step, never on a skipped one).
    func step()
    /// Restores the counter from a checkpoint; ``lr`` then equals the value saved with it.
    /// - Throws: ``LRScheduleError`` when `state.lastBatchIteration` < −1.
    func load(state: LRSchedulerState) throws
}

extension LRScheduler {
    /// No momentum cycling unless a schedule says otherwise (OneCycle does).
    public func beta1(at iteration: Int) -> Double? { nil }

    public func step() { lastBatchIteration += 1 }

    public func load(state: LRSchedulerState) throws {
        try checkLoadable(state)
        lastBatchIteration = state.lastBatchIteration
    }

    /// The learning rate in effect now (for the next optimizer update).
    public var lr: Double { lr(at: lastBatchIteration) }

    /// Beta1 in effect now when the schedule cycles momentum (OneCycle), else nil.
    public var beta1: Double? { beta1(at: lastBatchIteration) }

    /// The checkpointable state (DeepSpeed's `state_dict()`: `{"last_batch_iteration": n}`).
    public var state: LRSchedulerState { LRSchedulerState(lastBatchIteration: lastBatchIteration) }

    /// Sets `optimizer.lr` and, when this schedule cycles momentum and the optimizer has betas,
    /// `optimizer.betas` to `(beta1, 0.99)` — DeepSpeed's OneCycle overwrites beta2 with 0.99 while
    /// cycling momentum, and so do we. Call after construction and after every ``step()``.
    ///
    /// ```swift
    /// schedule.step(); schedule.apply(to: adam)
    /// ```
    public func apply(to optimizer: Optimizer) {
        optimizer.lr = lr
        if let b1 = beta1, optimizer.betas != nil { optimizer.betas = (b1, 0.99) }
    }

    /// The LR in effect at each of the first `count` optimizer steps of a fresh run: the
    /// construction value, then one value per ``step()`` (the scheduler itself is not changed).
    ///
    /// ```swift
    /// try WarmupLR(minLR: 0, maxLR: 1e-3, warmupNumSteps: 10).lrs(count: 3)  // [0, 0, 3.0103e-4]
    /// ```
    public func lrs(count: Int) -> [Double] { (0..<max(0, count)).map { lr(at: $0 - 1) } }
}

/// A scheduler's checkpoint state, stored under DeepSpeed's key `last_batch_iteration`.
///
/// ```swift
/// let saved = schedule.state                  // {"last_batch_iteration": 41}
/// try fresh.load(state: saved)                // fresh.lr == schedule.lr
/// ```
public struct LRSchedulerState: Codable, Sendable, Equatable {
    public var lastBatchIteration: Int

    public init(lastBatchIteration: Int) { self.lastBatchIteration = lastBatchIteration }

    enum CodingKeys: String, CodingKey { case lastBatchIteration = "last_batch_iteration" }
}

/// A schedule parameter outside what DeepSpeed's scheduler accepts.
///
/// ```swift
/// do { _ = try LRRangeTest(stepSize: 0) } catch { print(error) }
/// // lr_range_test_step_size = 0 is not allowed: must be a positive integer
/// ```
public struct LRScheduleError: Error, CustomStringConvertible, Equatable, Sendable {
    /// DeepSpeed's parameter name, e.g. "warmup_num_steps".
    public var key: String
    /// The offending value as written.
    public var value: String
    /// What is allowed.
    public var allowed: String

    public init(key: String, value: String, allowed: String) {
        self.key = key
        self.value = value
        self.allowed = allowed
    }

    public var description: String { "\(key) = \(value) is not allowed: \(allowed)" }
}

/// How a warmup rises from its minimum to its maximum.
public enum WarmupType: String, Codable, Sendable, CaseIterable {
    /// γ = ln(t + 1) / ln(K) (DeepSpeed's default).
    case log
    /// γ = t / K.
    case linear
}

func checkLoadable(_ state: LRSchedulerState) throws {
    if state.lastBatchIteration < -1 {
        throw LRScheduleError(key: "last_batch_iteration", value: "\(state.lastBatchIteration)",
                              allowed: "must be >= -1 (-1 = not stepped yet)")
    }
}
