import XCTest
import _TestSupport
import VAEAS
import VAEASConfig
import VAEASData

/// VAE-AS through the trainer's own gradient path, against finite differences
/// of its own forward-only objectives (one rank, in process).
final class VAEASObjectiveTests: XCTestCase {
    /// 12 random binary 4×4 images.
    func tinyDataset() -> Dataset {
        var rng = TestRNG(21)
        let px = (0..<(12 * 16)).map { _ in rng.uniform(0, 1) > 0.5 ? UInt8(255) : 0 }
        return Dataset(name: "tiny", split: "train", images: IDXImages(path: "mem", count: 12, rows: 4, cols: 4, pixels: px), labels: nil)
    }

    func trainer(_ sets: [String]) throws -> DataParallelStep {
        var c = TrainConfig.defaults
        for s in ["data.binarize=static", "model.latent=3", "model.hidden=6", "model.enc_layers=1", "model.dec_layers=1",
                  "model.cls_layers=1", "model.init=pytorch", "objective.kind=vaeas", "objective.labels=5",
                  "train.batch=6", "train.samples=2", "eval.every=0"] + sets {
            try c.set(s)
        }
        try c.validate()
        return try DataParallelStep.make(config: c, train: tinyDataset(), comm: LocalCommunicator())
    }

    let batch: [Int32] = [3, 0, 7, 11, 5, 8]

    /// Every parameter's gradient against finite differences of the objective
    /// it belongs to: encoder/decoder → L_φθ (with Î, classifier fixed),
    /// classifier → mean CE (z fixed). For each estimator and classifier depth.
    /// For both MD̂ estimators: eq. 14's CE term into z (ω fixed) and KL − Î.
    func testGradientsMatchFiniteDifferencesForEveryEstimator() throws {
        for md in ["eq14", "kl_minus_mi"] {
            for (estimator, clsLayers) in [("entropy", 1), ("ce", 1), ("fano", 1), ("entropy", 0), ("fano", 0)] {
                let t = try trainer(["objective.mi_estimator=\(estimator)", "objective.md_estimator=\(md)", "objective.alpha=0.3",
                                     "objective.beta=1.7", "model.cls_layers=\(clsLayers)"])
                try checkGradients(t, label: "\(md) \(estimator) cls_layers=\(clsLayers)")
            }
        }
        // α = 0 with eq. 14: no Î term, only β·mean CE reaches z.
        try checkGradients(try trainer(["objective.mi_estimator=entropy", "objective.alpha=0", "objective.beta=1.7"]),
                           label: "eq14 α = 0")
    }

    func testTreeGradientsMatchFiniteDifferences() throws {
        for md in ["eq14", "kl_minus_mi"] {
            for (estimator, clsLayers) in [("ce", 1), ("fano", 1), ("fano", 0)] {
                let t = try trainer(["objective.softmax=tree", "objective.mi_estimator=\(estimator)", "objective.md_estimator=\(md)",
                                     "objective.alpha=0.3", "objective.beta=1.7", "model.cls_layers=\(clsLayers)"])
                try checkGradients(t, label: "tree \(md) \(estimator) cls_layers=\(clsLayers)")
            }
        }
    }

    /// The reported terms: eq. 14's MD̂ = KL − (log V − CE), so MI + MD − KL = CE − Ĥ; with KL − Î it is 0.
    func testMarginalKLEstimatesAndTheirGap() throws {
        var s = StepStats()
        s.recon = 2 * 90; s.kl = 2 * 12; s.count = 2
        s.crossEntropy = 4 * 1.25; s.hHat = 4 * 0.75; s.rows = 4
        func terms(_ md: MDEstimator, _ mi: MIEstimator = .entropy) -> [String: Double] {
            Dictionary(uniqueKeysWithValues: Objective(alpha: 0.5, beta: 2, labels: 8, miEstimator: mi, mdEstimator: md).summary(s))
        }
        let e = terms(.eq14), k = terms(.klMinusMI)
        let logV = log(8.0)
        XCTAssertEqual(e["mi"]!, logV - 0.75, accuracy: 1e-12)
        XCTAssertEqual(e["md"]!, 12 - (logV - 1.25), accuracy: 1e-12)
        XCTAssertEqual(e["mi_md_minus_kl"]!, 1.25 - 0.75, accuracy: 1e-12)
        XCTAssertEqual(e["ce_minus_h"]!, 0.5, accuracy: 1e-12)
        XCTAssertEqual(e["loss"]!, 90 + 0.5 * (logV - 0.75) + 2 * (12 - logV + 1.25), accuracy: 1e-12)
        XCTAssertEqual(k["md"]!, 12 - (logV - 0.75), accuracy: 1e-12)
        XCTAssertEqual(k["mi_md_minus_kl"]!, 0, accuracy: 1e-12)
        XCTAssertEqual(k["loss"]!, 90 + 2 * 12 + (0.5 - 2) * (logV - 0.75), accuracy: 1e-12)
        // The gradient weights (R = 4 rows): eq. 14 sends −α/R·∂ΣĤ and β/R·∂ΣCE into z; with ce they are one term.
        let o = Objective(alpha: 0.5, beta: 2, labels: 8, miEstimator: .entropy, mdEstimator: .eq14)
        XCTAssertEqual(o.miGradientScale(rows: 4), -0.125); XCTAssertEqual(o.zCrossEntropyGradientScale(rows: 4), 0.5)
        let c = Objective(alpha: 0.5, beta: 2, labels: 8, miEstimator: .ce, mdEstimator: .eq14)
        XCTAssertEqual(c.miGradientScale(rows: 4), 0.375); XCTAssertEqual(c.zCrossEntropyGradientScale(rows: 4), 0)
        // With ce, Ĥ = CE: the two MD̂ give one objective (and MI + MD − KL = 0 under eq. 14 too).
        s.hHat = s.crossEntropy
        XCTAssertEqual(terms(.eq14, .ce)["loss"]!, terms(.klMinusMI, .ce)["loss"]!, accuracy: 1e-12)
        XCTAssertEqual(terms(.eq14, .ce)["mi_md_minus_kl"]!, 0, accuracy: 1e-12)
    }

    func testGradientsWithOneLabelPerSample() throws {
        try checkGradients(try trainer(["objective.labels=0", "objective.alpha=2", "objective.beta=0.5"]), label: "V=N")
    }

    /// KL annealing (objective.kl_anneal_steps) scales β only: at factor f the
    /// gradients are those of recon + βf·KL + (α − βf)·Î, checked against
    /// finite differences of the annealed objective.
    func testKLAnnealedGradientsMatchFiniteDifferences() throws {
        let t = try trainer(["objective.mi_estimator=entropy", "objective.alpha=0.3", "objective.beta=1.7"])
        t.model.klAnnealFactor = 0.4
        XCTAssertEqual(t.model.objective.beta, 1.7 * 0.4, accuracy: 1e-12)
        XCTAssertEqual(t.model.objective.alpha, 0.3)
        try checkGradients(t, label: "annealed f=0.4")
    }

    /// The annealed objective is a different objective: its encoder gradient
    /// differs from the full one's (so the factor really reaches backward).
    func testKLAnnealingChangesTheEncoderGradient() throws {
        func encoderGrads(_ f: Double) throws -> [Float] {
            let t = try trainer(["objective.alpha=0.3", "objective.beta=1.7"])
            t.model.klAnnealFactor = f
            _ = batch.withUnsafeBufferPointer { t.computeGradients($0, epoch: 1) }
            let p = t.model.parameters
            return Array(UnsafeBufferPointer(start: p.grads, count: t.model.classifierParameterRange.lowerBound))
        }
        let full = try encoderGrads(1), half = try encoderGrads(0.5)
        XCTAssertGreaterThan(zip(full, half).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// train.cls_steps: the extra classifier-only passes move only the
    /// classifier (encoder/decoder bit-identical to cls_steps = 1 after a
    /// step) and lower its CE on the batch; train.cls_lr likewise leaves the
    /// VAE's update alone, and cls_lr = lr is bit-identical to the default.
    func testClassifierStepsAndRateMoveOnlyTheClassifier() throws {
        func afterOneStep(_ sets: [String]) throws -> (vae: [Float], cls: [Float], out: [Float], ce: Double) {
            let t = try trainer(["objective.alpha=0.3", "objective.beta=1.7", "train.lr=0.01"] + sets)
            try batch.withUnsafeBufferPointer { _ = try t($0, epoch: 1) }
            let p = t.model.parameters, cr = t.model.classifierParameterRange
            let ce = batch.withUnsafeBufferPointer { t.losses($0, epoch: 1).classifierCE }
            let out = t.model.classifier!.output.store
            return (Array(UnsafeBufferPointer(start: p.values, count: cr.lowerBound)),
                    Array(UnsafeBufferPointer(start: p.values + cr.lowerBound, count: cr.count)),
                    Array(UnsafeBufferPointer(start: out.values, count: out.count)), ce)
        }
        let one = try afterOneStep([]), four = try afterOneStep(["train.cls_steps=4"])
        XCTAssertEqual(one.vae, four.vae)
        XCTAssertNotEqual(one.cls, four.cls)
        XCTAssertNotEqual(one.out, four.out)
        XCTAssertLessThan(four.ce, one.ce, "three more classifier steps should lower the batch CE")
        let same = try afterOneStep(["train.cls_lr=0.01"])
        XCTAssertEqual(same.vae, one.vae); XCTAssertEqual(same.cls, one.cls); XCTAssertEqual(same.out, one.out)
        let fast = try afterOneStep(["train.cls_lr=0.05"])
        XCTAssertEqual(fast.vae, one.vae)
        XCTAssertNotEqual(fast.cls, one.cls)
        XCTAssertNotEqual(fast.out, one.out)
    }

    /// train.clip_grad_norm: the step's ‖g‖ (replicated and classifier rows)
    /// is the norm of the gradients computed, and after clipping the
    /// gradients that were applied have norm c. A huge c changes nothing.
    func testGradientClippingScalesTheGlobalNorm() throws {
        let probe = try trainer(["objective.alpha=0.3", "objective.beta=1.7"])
        _ = batch.withUnsafeBufferPointer { probe.computeGradients($0, epoch: 1) }
        func sq(_ s: ParameterStore) -> Double { (0..<s.count).reduce(0.0) { $0 + Double(s.grads[$1]) * Double(s.grads[$1]) } }
        let norm = (sq(probe.model.parameters) + sq(probe.model.classifier!.output.store)).squareRoot()
        XCTAssertGreaterThan(norm, 0.1)

        let clipped = try trainer(["objective.alpha=0.3", "objective.beta=1.7", "train.clip_grad_norm=\(norm / 10)"])
        try batch.withUnsafeBufferPointer { _ = try clipped($0, epoch: 1) }
        XCTAssertEqual(clipped.lastGradNorm!, norm, accuracy: 1e-6 * norm)
        let after = (sq(clipped.model.parameters) + sq(clipped.model.classifier!.output.store)).squareRoot()
        XCTAssertEqual(after, norm / 10, accuracy: 1e-4 * norm)

        let plain = try trainer(["objective.alpha=0.3", "objective.beta=1.7"])
        let loose = try trainer(["objective.alpha=0.3", "objective.beta=1.7", "train.clip_grad_norm=1e9"])
        for t in [plain, loose] { try batch.withUnsafeBufferPointer { _ = try t($0, epoch: 1) } }
        let a = plain.model.parameters, b = loose.model.parameters
        XCTAssertEqual(Array(UnsafeBufferPointer(start: a.values, count: a.count)),
                       Array(UnsafeBufferPointer(start: b.values, count: b.count)))
    }

    /// Warm-up is linear from 0; cosine reaches half at the middle of the
    /// post-warm-up span and 0 at the end; KL annealing is linear to 1.
    func testScheduleAndAnnealingFactors() {
        let w = LearningRateSchedule(warmupSteps: 100, kind: .constant)
        XCTAssertEqual(w.factor(step: 1, totalSteps: 1000), 0.01, accuracy: 1e-7)
        XCTAssertEqual(w.factor(step: 50, totalSteps: 1000), 0.5, accuracy: 1e-7)
        XCTAssertEqual(w.factor(step: 100, totalSteps: 1000), 1)
        XCTAssertEqual(w.factor(step: 999, totalSteps: 1000), 1)
        let c = LearningRateSchedule(warmupSteps: 100, kind: .cosine)
        XCTAssertEqual(c.factor(step: 100, totalSteps: 1100), 1, accuracy: 1e-7)
        XCTAssertEqual(c.factor(step: 600, totalSteps: 1100), 0.5, accuracy: 1e-6)
        XCTAssertEqual(c.factor(step: 1100, totalSteps: 1100), 0, accuracy: 1e-7)
        XCTAssertEqual(klAnnealFactor(step: 25, annealSteps: 100), 0.25)
        XCTAssertEqual(klAnnealFactor(step: 400, annealSteps: 100), 1)
        XCTAssertEqual(klAnnealFactor(step: 3, annealSteps: 0), 1)
    }

    func checkGradients(_ t: DataParallelStep, label: String) throws {
        try batch.withUnsafeBufferPointer { b in
            _ = t.computeGradients(b, epoch: 1)
            let store = t.model.parameters
            let grads = Array(store.gradBuffer)
            for slot in store.slots {
                let classifierSlot = slot.name.hasPrefix("classifier")
                for j in 0..<slot.count {
                    let i = slot.offset + j
                    let fd = centralDifference(store.values, i, h: 3e-3) {
                        let l = t.losses(b, epoch: 1)
                        return classifierSlot ? l.classifierCE : l.objective
                    }
                    XCTAssertTrue(close(fd, Double(grads[i]), rtol: 2e-2, atol: 5e-4),
                                  "\(label) \(slot.name)[\(j)]: fd \(fd) vs \(grads[i])")
                }
            }
            let sm = t.model.classifier!.output
            let shard = Array(sm.store.gradBuffer)
            for i in 0..<sm.store.count {
                let fd = centralDifference(sm.store.values, i, h: 3e-3) { t.losses(b, epoch: 1).classifierCE }
                XCTAssertTrue(close(fd, Double(shard[i]), rtol: 2e-2, atol: 5e-4), "\(label) classifier.out[\(i)]: fd \(fd) vs \(shard[i])")
            }
        }
    }

    /// The Î term really reaches the encoder: its gradient is what changes
    /// when α moves away from β.
    func testMITermReachesTheEncoder() throws {
        func encoderGrads(_ alpha: Double) throws -> [Float] {
            let t = try trainer(["objective.alpha=\(alpha)", "objective.beta=1"])
            _ = batch.withUnsafeBufferPointer { t.computeGradients($0, epoch: 1) }
            let s = t.model.parameters.slot(named: "encoder.layers.0.weight")!
            return Array(UnsafeBufferPointer(start: t.model.parameters.grads + s.offset, count: s.count))
        }
        let same = try encoderGrads(1), moved = try encoderGrads(3)
        let diff = zip(same, moved).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(diff, 1e-4, "α ≠ β must change the encoder's gradient through Î")
    }

    /// The replicated gradients of a run with these settings on the fixed batch.
    func gradients(_ sets: [String]) throws -> (names: [ParameterSlot], grads: [Float]) {
        let t = try trainer(sets)
        _ = batch.withUnsafeBufferPointer { t.computeGradients($0, epoch: 1) }
        return (t.model.parameters.slots, Array(t.model.parameters.gradBuffer))
    }

    /// α = β = 1 is the plain ELBO with MD̂ = KL − Î, and with eq. 14 and the ce estimator:
    /// encoder and decoder gradients equal `vae`'s, bit for bit (the label term's weight is 0
    /// and the classifier only measures). With eq. 14 and the entropy estimator it is not.
    func testAlphaEqualsBetaEqualsOneIsTheELBO() throws {
        let v = try gradients(["objective.kind=vae"])
        for sets in [["objective.md_estimator=kl_minus_mi"], ["objective.md_estimator=eq14", "objective.mi_estimator=ce"]] {
            try assertSameEncoderDecoderGradients(try gradients(["objective.alpha=1", "objective.beta=1"] + sets), v)
        }
        let eq14 = try gradients(["objective.alpha=1", "objective.beta=1", "objective.md_estimator=eq14", "objective.mi_estimator=entropy"])
        let s = v.names.first { $0.name == "encoder.layers.0.weight" }!, o = eq14.names.first { $0.name == s.name }!
        let moved = (0..<s.count).map { abs(eq14.grads[o.offset + $0] - v.grads[s.offset + $0]) }.max()!
        XCTAssertGreaterThan(moved, 1e-5, "eq. 14's β·(CE − H) must reach the encoder at α = β")
    }

    func assertSameEncoderDecoderGradients(_ a: (names: [ParameterSlot], grads: [Float]),
                                           _ v: (names: [ParameterSlot], grads: [Float])) throws {
        var compared = 0
        for slot in v.names {
            let other = a.names.first { $0.name == slot.name }!
            for j in 0..<slot.count {
                XCTAssertEqual(a.grads[other.offset + j], v.grads[slot.offset + j], "\(slot.name)[\(j)]")
                compared += 1
            }
        }
        XCTAssertEqual(compared, v.grads.count)
        XCTAssertGreaterThan(a.grads.count, v.grads.count, "the VAE-AS store also holds the classifier's hidden layers")
    }

    /// With the Î path executed: ∂L_φθ = ∂(recon + β·KL) + (α − β)·∂Î, so the
    /// encoder/decoder gradient minus `vae`'s is linear in α − β. A small
    /// weight ε = 0.01 must give 1/100 of the difference at α − β = 1 (and
    /// not 0, which a skipped path would give), for every estimator.
    func testMIGradientScalesWithAlphaMinusBeta() throws {
        for estimator in ["entropy", "ce", "fano"] {
            let base = try gradients(["objective.kind=vae"])
            let kl = "objective.md_estimator=kl_minus_mi"
            let small = try gradients(["objective.alpha=1.01", "objective.beta=1", "objective.mi_estimator=\(estimator)", kl])
            let unit = try gradients(["objective.alpha=2", "objective.beta=1", "objective.mi_estimator=\(estimator)", kl])
            var num = 0.0, den = 0.0, largest = 0.0
            for slot in base.names {
                for j in 0..<slot.count {
                    let g0 = Double(base.grads[slot.offset + j])
                    let ds = Double(small.grads[slot.offset + j]) - g0, du = Double(unit.grads[slot.offset + j]) - g0
                    num += ds * du; den += du * du; largest = max(largest, abs(du))
                }
            }
            XCTAssertGreaterThan(largest, 1e-5, "\(estimator): α − β = 1 must move the encoder/decoder gradient")
            // Least-squares slope of (small − vae) against (unit − vae).
            XCTAssertEqual(num / den, 0.01, accuracy: 0.001, "\(estimator): the Î gradient is not (α − β)·∂Î")
        }
    }

    func testRandomLabelAssignmentIsBalancedAndSeeded() {
        let a = LabelAssignment(samples: 1003, labels: 10, kind: .random, seed: 4)
        var counts = [Int](repeating: 0, count: 10)
        for i in 0..<1003 { counts[Int(a.label(of: Int32(i)))] += 1 }
        XCTAssertEqual(counts.max()! - counts.min()!, 1)
        let b = LabelAssignment(samples: 1003, labels: 10, kind: .random, seed: 4)
        let c = LabelAssignment(samples: 1003, labels: 10, kind: .random, seed: 5)
        XCTAssertEqual((0..<1003).map { a.label(of: Int32($0)) }, (0..<1003).map { b.label(of: Int32($0)) })
        XCTAssertNotEqual((0..<1003).map { a.label(of: Int32($0)) }, (0..<1003).map { c.label(of: Int32($0)) })
        XCTAssertEqual(LabelAssignment(samples: 20, labels: 7, kind: .modulo, seed: 0).label(of: 15), 1)
    }

    func testTreeWithEntropyIsRejectedClearly() throws {
        XCTAssertThrowsError(try trainer(["objective.softmax=tree", "objective.mi_estimator=entropy"])) { error in
            XCTAssertTrue("\(error)".contains("objective.mi_estimator"), "\(error)")
            XCTAssertTrue("\(error)".contains("tree"), "\(error)")
        }
    }
}
