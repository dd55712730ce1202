import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation

/// The training objective (paper eq. 3; design doc, "Objective"), in one place:
/// its value, the weights its gradient uses, and the reported terms.
///
/// Encoder and decoder minimise
///     L_φθ = mean recon + α·Î + β·MD̂ = mean recon + β·mean KL + (α − β)·Î,
/// with the classifier ω held fixed inside Î; the classifier minimises its
/// mean CE with z held fixed. `vae` is the plain ELBO (α = β = 1, no Î).
public struct Objective: Sendable, Equatable {
    public let alpha: Double
    public let beta: Double
    /// V when there is a classifier.
    public let labels: Int?

    public init(alpha: Double, beta: Double, labels: Int?) {
        self.alpha = alpha; self.beta = beta; self.labels = labels
    }

    /// The objective at KL-annealing factor `f` ∈ [0, 1] (`objective.kl_anneal_steps`):
    /// β·f weighs the marginal KL MD̂ while α keeps weighing Î, i.e.
    /// L = mean recon + α·Î + β f·MD̂ = mean recon + β f·mean KL + (α − β f)·Î.
    /// For the plain VAE (α = β = 1, no Î) this is the usual KL warm-up of
    /// Bowman et al. (2016), the remedy the paper's §1 names.
    public func annealed(_ f: Double) -> Objective {
        f == 1 ? self : Objective(alpha: alpha, beta: beta * f, labels: labels)
    }

    /// The plain ELBO.
    public static let elbo = Objective(alpha: 1, beta: 1, labels: nil)

    /// β, the weight of Σ KL_i in ∂L_φθ.
    public var klWeight: Float { Float(beta) }

    /// Scale of ∂(Σ_r Ĥ_r) in ∂L_φθ: +(α − β)·Î = −(α − β)·(1/R)·Σ_r Ĥ_r + const,
    /// for R global classifier rows. 0 when α = β (the classifier only measures).
    public func miGradientScale(rows: Int) -> Float { Float(-(alpha - beta)) / Float(rows) }

    /// Scale of ∂(Σ_r CE_r) for the classifier's mean CE.
    public func ceGradientScale(rows: Int) -> Float { 1 / Float(rows) }

    /// The reported terms of the sums `s`: loss (L_φθ), recon, kl, and for
    /// VAE-AS mi = Î (eq. 9), md = MD̂ (appendix 7.1) and sc = mean CE.
    public func summary(_ s: StepStats) -> [(String, Double)] {
        let recon = s.recon / Double(s.count), kl = s.kl / Double(s.count)
        // β = 1 except under KL annealing; 1·kl is kl exactly.
        guard let labels, s.rows > 0 else { return [("loss", recon + beta * kl), ("recon", recon), ("kl", kl)] }
        let mi = Estimators.mutualInformation(meanHHat: s.hHat / Double(s.rows), labels: labels)
        let md = Estimators.marginalKL(meanKL: kl, mutualInformation: mi)
        return [("loss", recon + alpha * mi + beta * md), ("recon", recon), ("kl", kl),
                ("mi", mi), ("md", md), ("sc", s.crossEntropy / Double(s.rows))]
    }

    /// L_φθ and the classifier's mean CE (0 without one) of the sums `s`.
    public func value(_ s: StepStats) -> (objective: Double, classifierCE: Double) {
        (summary(s)[0].1, s.rows > 0 ? s.crossEntropy / Double(s.rows) : 0)
    }
}
