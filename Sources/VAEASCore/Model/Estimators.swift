import VAEASConfig
#if canImport(Glibc)
import Glibc
#endif

/// The classifier's statistics as pure functions (Megatron-LM's
/// `cross_entropy.py` idea): the partitioned layers call them between their
/// collectives, the objective and the reports call them on reduced sums.
/// Notation: V labels, row r with target label e, logits ℓ, m = max_j ℓ_j,
/// S = Σ_j e^{ℓ_j − m}, A = Σ_j e^{ℓ_j − m}(ℓ_j − m), p_j = e^{ℓ_j − m}/S.
public enum Estimators {
    /// CE = −log s_ω(e | z) = log S − (ℓ_e − m): the classifier's loss (eq. 12)
    /// from the row's fused sums.
    @inline(__always)
    public static func crossEntropy(logSumExp logS: Double, shiftedTargetLogit t: Double) -> Double { logS - t }

    /// H(s_ω(·|z)) = −Σ_j p_j log p_j = log S − A/S (eq. 13, with the classifier
    /// standing in for q(x | z)).
    @inline(__always)
    public static func entropy(logSumExp logS: Double, sumExp s: Double, sumExpShifted a: Double) -> Double { logS - a / s }

    /// P_e = 1 − s_ω(e | z) = 1 − e^{−CE}, kept inside (0, 1) so that h(P_e)
    /// and its derivative stay finite (Theorem 3.3's error probability).
    @inline(__always)
    public static func errorProbability(crossEntropy ce: Double) -> Double { min(max(-expm1(-ce), 1e-12), 1 - 1e-12) }

    /// h(p) = −p log p − (1 − p) log(1 − p), in nats.
    @inline(__always)
    public static func binaryEntropy(_ p: Double) -> Double { -p * log(p) - (1 - p) * log1p(-p) }

    /// Fano's bound on the row's conditional entropy (Theorem 3.3; the design
    /// doc's choice h(P_e) for the paper's misprinted term):
    /// Ĥ = h(P_e) + P_e log(V − 1) ≥ H(x | z) when s_ω has error P_e.
    @inline(__always)
    public static func fano(crossEntropy ce: Double, labels: Int) -> Double {
        let pe = errorProbability(crossEntropy: ce)
        return binaryEntropy(pe) + pe * log(Double(max(labels - 1, 1)))
    }

    /// Ĥ_r of the selected estimator; `entropy` is H only when the layer has all
    /// V probabilities (the full softmax), else pass nil and it is not asked for.
    @inline(__always)
    public static func hHat(_ estimator: MIEstimator, crossEntropy ce: Double, entropy: Double?, labels: Int) -> Double {
        switch estimator {
        case .entropy:
            guard let entropy else { preconditionFailure("the entropy estimator needs all V probabilities") }
            return entropy
        case .ce: return ce
        case .fano: return fano(crossEntropy: ce, labels: labels)
        }
    }

    /// dĤ/dCE for the estimators that are functions of CE alone: 1 for `ce`;
    /// (h′(P_e) + log(V − 1)) · dP_e/dCE = (log((1 − P_e)/P_e) + log(V − 1)) · (1 − P_e) for `fano`.
    @inline(__always)
    public static func hHatSlope(_ estimator: MIEstimator, crossEntropy ce: Double, labels: Int) -> Double {
        switch estimator {
        case .ce, .entropy: return 1
        case .fano:
            let pe = errorProbability(crossEntropy: ce)
            return (log1p(-pe) - log(pe) + log(Double(max(labels - 1, 1)))) * (1 - pe)
        }
    }

    /// Î = log V − mean_r Ĥ_r: eq. 9, I(z, x) = log N − E_z[H(q(x | z))], with
    /// V labels in place of N samples and the classifier in place of q(x | z).
    @inline(__always)
    public static func mutualInformation(meanHHat: Double, labels: Int) -> Double { log(Double(labels)) - meanHHat }

    /// MD̂ = mean KL − Î: the marginal KL(q(z) ‖ p(z)) by the identity
    /// mean_i KL(q(z|x_i) ‖ p(z)) = I(z, x) + KL(q(z) ‖ p(z)) (appendix 7.1),
    /// with the classifier's Î in place of I (`objective.md_estimator: kl_minus_mi`).
    @inline(__always)
    public static func marginalKL(meanKL: Double, mutualInformation mi: Double) -> Double { meanKL - mi }

    /// MD̂ by the paper's eq. 14: q(z) = q(z|x_i) / (V · q(x = x_i | z)) with q(x_i|z) ≈ s_ω(e_i|z), so
    /// E[log q(z) − log p(z)] = mean KL − log V + mean CE (`objective.md_estimator: eq14`). Against
    /// `marginalKL`, MI + MD − KL = mean CE − mean Ĥ, ≥ 0 for the entropy estimator in expectation.
    @inline(__always)
    public static func marginalKLEq14(meanKL: Double, meanCrossEntropy ce: Double, labels: Int) -> Double {
        meanKL - (log(Double(labels)) - ce)
    }
}
