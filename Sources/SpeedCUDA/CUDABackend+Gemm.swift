// Backend.gemm through cuBLASLt: row-major (batched, broadcast) products mapped onto cuBLASLt's column-major ones.
// Invariant: a row-major C = op(A)·op(B) is computed as the column-major Cᵀ = op(B)ᵀ·op(A)ᵀ, so every buffer is
// passed as stored and only the operands swap; the chosen algorithm is cached per (shape, dtype, alignment).

import CSpeedCUDA
import SpeedCore
import Synchronization

/// cuBLASLt's handle, a fixed workspace, and the heuristic's choice per matmul shape.
final class GemmState: @unchecked Sendable {
    static let workspaceBytes = 32 << 20
    let cublas: CublasLtLibrary
    let handle: SSCublasLtHandle
    let workspace: UInt64
    let plans = Mutex<[PlanKey: GemmPlan]>([:])
    /// Held from setting a plan's bias pointer to issuing its matmul (the descriptor is shared by callers).
    let biasLock = Mutex(())

    init(cublas: CublasLtLibrary, memory: CachingAllocator<UInt64>) throws(CUDAError) {
        self.cublas = cublas
        var h: SSCublasLtHandle?
        let status = cublas.api.cublasLtCreate!(&h)
        guard status == SS_CUBLAS_STATUS_SUCCESS, let h else {
            throw .cublas(call: "cublasLtCreate", status: status, message: cublas.statusString(status))
        }
        handle = h
        workspace = try memory.allocateDevice(Self.workspaceBytes)
    }

    func destroy(memory: CachingAllocator<UInt64>) {
        for plan in plans.withLock({ Array($0.values) }) { plan.destroy(cublas) }
        _ = cublas.api.cublasLtDestroy!(handle)
        memory.deallocate(workspace)
    }
}

struct PlanKey: Hashable {
    var shape: GemmShape
    var dtype: DType
    var betaIsZero: Bool
    var alignments: [UInt32]
    /// CUBLASLT_EPILOGUE_BIAS (the bias pointer is set per call).
    var bias: Bool = false
}

/// Descriptors and the algorithm for one PlanKey (alpha/beta values are passed per call).
final class GemmPlan: @unchecked Sendable {
    let desc: SSCublasLtMatmulDesc
    let layouts: [SSCublasLtMatrixLayout]   // A', B', C (also D)
    var algo: SSCublasLtMatmulAlgo

    init(desc: SSCublasLtMatmulDesc, layouts: [SSCublasLtMatrixLayout], algo: SSCublasLtMatmulAlgo) {
        self.desc = desc; self.layouts = layouts; self.algo = algo
    }

    func destroy(_ cublas: CublasLtLibrary) {
        _ = cublas.api.cublasLtMatmulDescDestroy!(desc)
        for l in layouts { _ = cublas.api.cublasLtMatrixLayoutDestroy!(l) }
    }
}

extension CUDABackend {
    public func gemm(_ a: Tensor, _ b: Tensor, into c: Tensor, _ s: GemmShape, bias: Tensor?) {
        precondition(a.dtype == b.dtype && b.dtype == c.dtype, "gemm: dtypes \(a.dtype), \(b.dtype), \(c.dtype) differ")
        Self.requireFloat(a.dtype, "gemm")
        guard s.m > 0, s.n > 0, s.batch > 0 else { return }
        if let bias {
            // cuBLASLt's bias epilogue wants an aligned vector; otherwise broadcast the bias into C and accumulate.
            guard s.k > 0 && address(bias) % 16 == 0 else { return gemmBroadcastingBias(a, b, into: c, s, bias: bias) }
            checkGemmBias(bias, c, s)
            return issueGemm(a, b, c, s, bias: bias)
        }
        if s.k == 0 {
            // cuBLASLt rejects k = 0; C = beta·C.
            if s.beta == 0 { fill(c, value: 0) } else if s.beta != 1 { unary(.affine(scale: s.beta, shift: 0), c, into: c) }
            return
        }
        issueGemm(a, b, c, s, bias: nil)
    }

    /// One cublasLtMatmul (k > 0), with the bias epilogue when `bias` is given.
    private func issueGemm(_ a: Tensor, _ b: Tensor, _ c: Tensor, _ s: GemmShape, bias: Tensor?) {
        let pa = address(a), pb = address(b), pc = address(c)
        func alignment(_ p: UInt64) -> UInt32 { UInt32(min(256, 1 << min(p.trailingZeroBitCount, 8))) }
        // Column-major view: A' = B (n×k as op), B' = A (k×m as op), D = C (n×m).
        let key = PlanKey(shape: GemmShape(batch: s.batch, m: s.m, n: s.n, k: s.k, transA: s.transA, transB: s.transB,
                                           strideA: s.strideA, strideB: s.strideB, strideC: s.strideC),
                          dtype: a.dtype, betaIsZero: s.beta == 0,
                          alignments: [alignment(pb), alignment(pa), alignment(pc), alignment(pc)], bias: bias != nil)
        let plan = gemmPlan(key)
        try? context.makeCurrent()
        // alpha/beta in the scale type: fp64 for fp64 matmuls, else fp32.
        var alpha64 = s.alpha, beta64 = s.beta, alpha32 = Float(s.alpha), beta32 = Float(s.beta)
        var algo = plan.algo
        let wide = a.dtype == .float64
        let ws = UnsafeMutableRawPointer(bitPattern: UInt(gemmState.workspace))
        func issue() -> SSCublasStatus {
            profiled(bias == nil ? "gemm" : "gemm_bias") {
                withUnsafeMutableBytes(of: &alpha64) { a64 in withUnsafeMutableBytes(of: &beta64) { b64 in
                    withUnsafeMutableBytes(of: &alpha32) { a32 in withUnsafeMutableBytes(of: &beta32) { b32 in
                        gemmState.cublas.api.cublasLtMatmul!(
                            gemmState.handle, plan.desc, wide ? a64.baseAddress : a32.baseAddress,
                            UnsafeRawPointer(bitPattern: UInt(pb)), plan.layouts[0],
                            UnsafeRawPointer(bitPattern: UInt(pa)), plan.layouts[1], wide ? b64.baseAddress : b32.baseAddress,
                            UnsafeRawPointer(bitPattern: UInt(pc)), plan.layouts[2], UnsafeMutableRawPointer(bitPattern: UInt(pc)),
                            plan.layouts[2], &algo, ws, GemmState.workspaceBytes, stream)
                    } }
                } }
            }
        }
        let status: SSCublasStatus
        if let bias {
            // The descriptor is shared: set its bias pointer and issue the matmul under one lock.
            var pointer = UInt(address(bias))
            status = gemmState.biasLock.withLock { _ in
                let set = gemmState.cublas.api.cublasLtMatmulDescSetAttribute!(
                    plan.desc, Int32(SS_CUBLASLT_MATMUL_DESC_BIAS_POINTER), &pointer, MemoryLayout<UInt>.size)
                return set == SS_CUBLAS_STATUS_SUCCESS ? issue() : set
            }
        } else {
            status = issue()
        }
        guard status == SS_CUBLAS_STATUS_SUCCESS else {
            fatalError("CUDA: cublasLtMatmul failed for \(s) (\(a.dtype)): \(gemmState.cublas.statusString(status)) (cublasStatus \(status))")
        }
    }

    /// The cached plan for `key`, creating descriptors and asking the heuristic on first use.
    private func gemmPlan(_ key: PlanKey) -> GemmPlan {
        if let p = gemmState.plans.withLock({ $0[key] }) { return p }
        let api = gemmState.cublas.api
        func check(_ status: SSCublasStatus, _ call: String) {
            guard status == SS_CUBLAS_STATUS_SUCCESS else {
                fatalError("CUDA: \(call) failed: \(gemmState.cublas.statusString(status)) (cublasStatus \(status))")
            }
        }
        let s = key.shape
        let type: Int32, compute: Int32, scale: Int32
        switch key.dtype {
        case .float32: (type, compute, scale) = (Int32(SS_CUDA_R_32F), Int32(SS_CUBLAS_COMPUTE_32F), Int32(SS_CUDA_R_32F))
        case .float64: (type, compute, scale) = (Int32(SS_CUDA_R_64F), Int32(SS_CUBLAS_COMPUTE_64F), Int32(SS_CUDA_R_64F))
        case .bfloat16: (type, compute, scale) = (Int32(SS_CUDA_R_16BF), Int32(SS_CUBLAS_COMPUTE_32F), Int32(SS_CUDA_R_32F))
        case .float16: (type, compute, scale) = (Int32(SS_CUDA_R_16F), Int32(SS_CUBLAS_COMPUTE_32F), Int32(SS_CUDA_R_32F))
        default: preconditionFailure("gemm: \(key.dtype) is not a float type")
        }
        var desc: SSCublasLtMatmulDesc?
        check(api.cublasLtMatmulDescCreate!(&desc, compute, scale), "cublasLtMatmulDescCreate")
        // op on A' (= row-major B): transpose when B is stored [n, k] (transB); op on B' (= A) when transA.
        var opA = Int32(s.transB ? SS_CUBLAS_OP_T : SS_CUBLAS_OP_N)
        var opB = Int32(s.transA ? SS_CUBLAS_OP_T : SS_CUBLAS_OP_N)
        check(api.cublasLtMatmulDescSetAttribute!(desc, Int32(SS_CUBLASLT_MATMUL_DESC_TRANSA), &opA, 4), "TRANSA")
        check(api.cublasLtMatmulDescSetAttribute!(desc, Int32(SS_CUBLASLT_MATMUL_DESC_TRANSB), &opB, 4), "TRANSB")
        if key.bias {
            // Bias of D's type, one value per row of the column-major D (= per column of our row-major C).
            var epilogue = UInt32(SS_CUBLASLT_EPILOGUE_BIAS)
            check(api.cublasLtMatmulDescSetAttribute!(desc, Int32(SS_CUBLASLT_MATMUL_DESC_EPILOGUE), &epilogue, 4), "EPILOGUE")
        }
        // Stored column-major shapes (rows, cols, ld) of each operand.
        let dims: [(UInt64, UInt64, Int64, Int)] = [
            s.transB ? (UInt64(s.k), UInt64(s.n), Int64(s.k), s.strideB) : (UInt64(s.n), UInt64(s.k), Int64(s.n), s.strideB),
            s.transA ? (UInt64(s.m), UInt64(s.k), Int64(s.m), s.strideA) : (UInt64(s.k), UInt64(s.m), Int64(s.k), s.strideA),
            (UInt64(s.n), UInt64(s.m), Int64(s.n), s.strideC),
        ]
        var layouts: [SSCublasLtMatrixLayout] = []
        for (rows, cols, ld, stride) in dims {
            var l: SSCublasLtMatrixLayout?
            check(api.cublasLtMatrixLayoutCreate!(&l, type, rows, cols, ld), "cublasLtMatrixLayoutCreate")
            if s.batch > 1 {
                var count = Int32(s.batch), offset = Int64(stride)
                check(api.cublasLtMatrixLayoutSetAttribute!(l, Int32(SS_CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT), &count, 4), "BATCH_COUNT")
                check(api.cublasLtMatrixLayoutSetAttribute!(l, Int32(SS_CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET), &offset, 8),
                      "STRIDED_BATCH_OFFSET")
            }
            layouts.append(l!)
        }
        var pref: SSCublasLtMatmulPreference?
        check(api.cublasLtMatmulPreferenceCreate!(&pref), "cublasLtMatmulPreferenceCreate")
        defer { _ = api.cublasLtMatmulPreferenceDestroy!(pref) }
        var ws = UInt64(GemmState.workspaceBytes)
        check(api.cublasLtMatmulPreferenceSetAttribute!(pref, Int32(SS_CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES), &ws, 8), "MAX_WORKSPACE")
        let alignAttributes = [SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
                               SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, SS_CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES]
        for (attribute, value) in zip(alignAttributes, key.alignments) {
            var v = value
            check(api.cublasLtMatmulPreferenceSetAttribute!(pref, Int32(attribute), &v, 4), "MIN_ALIGNMENT")
        }
        var result = SSCublasLtMatmulHeuristicResult()
        var returned: Int32 = 0
        let status = api.cublasLtMatmulAlgoGetHeuristic!(gemmState.handle, desc, layouts[0], layouts[1], layouts[2], layouts[2],
                                                         pref, 1, &result, &returned)
        guard status == SS_CUBLAS_STATUS_SUCCESS, returned > 0 else {
            fatalError("CUDA: cuBLASLt has no algorithm for \(s) in \(key.dtype) (alignments \(key.alignments)): "
                + "\(gemmState.cublas.statusString(status)) (cublasStatus \(status))")
        }
        let plan = GemmPlan(desc: desc!, layouts: layouts, algo: result.algo)
        return gemmState.plans.withLock { plans in
            if let existing = plans[key] { plan.destroy(gemmState.cublas); return existing }
            plans[key] = plan
            return plan
        }
    }
}
