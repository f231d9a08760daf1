// GPU time per kernel family, measured with CUDA events recorded around every launch, matmul and device copy while
// a profile is active (`swiftspeed bench gpu-step --profile`).
// Invariant: with no profile active the only cost per call is one atomic load; reading a profile synchronises.

import CSpeedCUDA
import Synchronization

/// The GPU time of one kernel family over a profiled interval.
public struct KernelTime: Sendable, Hashable {
    /// `flash_fwd`, `binary_add`, `gemm`, `memcpy`, ...: the kernel name without `ss_`, dtype and tile suffixes.
    public var family: String
    public var calls: Int
    public var milliseconds: Double
}

/// Events recorded since `startProfiling`, by label, and the event pool they come from.
struct ProfileState {
    var pending: [(label: String, start: UInt, end: UInt)] = []
    var pool: [UInt] = []
}

extension CUDABackend {
    /// Starts timing every kernel, matmul and device copy on the GPU (CUDA events around each).
    ///
    /// ```swift
    /// backend.startProfiling()
    /// trainStep()
    /// for row in backend.stopProfiling() { print(row.family, row.calls, row.milliseconds) }
    /// ```
    public func startProfiling() {
        profile.withLock { state in
            if state == nil { state = ProfileState() }
        }
        profiling.store(true, ordering: .releasing)
    }

    /// Stops timing, waits for the GPU, and returns the time per family, longest first.
    public func stopProfiling() -> [KernelTime] {
        profiling.store(false, ordering: .releasing)
        synchronize()
        let pending = profile.withLock { state -> [(label: String, start: UInt, end: UInt)] in
            defer { state?.pending.removeAll() }
            return state?.pending ?? []
        }
        var totals: [String: (Int, Double)] = [:]
        for p in pending {
            var ms: Float = 0
            check(driver.api.cuEventElapsedTime!(&ms, OpaquePointer(bitPattern: p.start), OpaquePointer(bitPattern: p.end)),
                  "cuEventElapsedTime(\(p.label))")
            let (n, t) = totals[p.label] ?? (0, 0)
            totals[p.label] = (n + 1, t + Double(ms))
        }
        profile.withLock { state in state?.pool.append(contentsOf: pending.flatMap { [$0.start, $0.end] }) }
        return totals.map { KernelTime(family: $0.key, calls: $0.value.0, milliseconds: $0.value.1) }
            .sorted { $0.milliseconds > $1.milliseconds }
    }

    /// Runs `body` (which issues work on `stream`) between two recorded events when a profile is active.
    func profiled<R>(_ label: @autoclosure () -> String, _ body: () -> R) -> R {
        guard profiling.load(ordering: .acquiring) else { return body() }
        let (start, end) = (event(), event())
        check(driver.api.cuEventRecord!(OpaquePointer(bitPattern: start), stream), "cuEventRecord")
        let result = body()
        check(driver.api.cuEventRecord!(OpaquePointer(bitPattern: end), stream), "cuEventRecord")
        let name = label()
        profile.withLock { $0?.pending.append((Self.family(of: name), start, end)) }
        return result
    }

    private func event() -> UInt {
        if let e = profile.withLock({ $0?.pool.popLast() }) { return e }
        var e: SSCUevent?
        check(driver.api.cuEventCreate!(&e, 0), "cuEventCreate")
        return UInt(bitPattern: e)
    }

    /// `ss_flash_bwd_dq_bf16_d64` → `flash_bwd_dq`: the kernel name without its prefix and dtype/tile suffixes.
    static func family(of name: String) -> String {
        let suffixes: Set<Substring> = ["f32", "f64", "bf16", "f16", "i32", "i64", "u8", "bool", "to"]
        var parts = name.split(separator: "_")
        if parts.first == "ss" { parts.removeFirst() }
        while let last = parts.last, parts.count > 1,
              suffixes.contains(last) || (last.first == "d" && last.dropFirst().allSatisfy(\.isNumber) && last.count > 1) {
            parts.removeLast()
        }
        return parts.joined(separator: "_")
    }

    /// Destroys the profiler's events (at deinit).
    func destroyProfileEvents() {
        let events = profile.withLock { state -> [UInt] in
            defer { state = nil }
            return (state?.pool ?? []) + (state?.pending.flatMap { [$0.start, $0.end] } ?? [])
        }
        for e in events { _ = driver.api.cuEventDestroy!(OpaquePointer(bitPattern: e)) }
    }
}
