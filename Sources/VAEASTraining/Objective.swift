import VAEASConfig
import VAEASCore
import VAEASDistributed
import VAEASEvaluation

/// The training objective (paper eq. 3; design doc, "Objective"), in one place:
/// its value, the weights its gradient uses, and the reported terms.
///
/// Encoder and decoder minimise L_φθ = mean recon + α·Î + β·MD̂, with the classifier ω held fixed
/// inside Î and MD̂; the classifier minimises its mean CE with z held fixed. Î = log V − mean Ĥ
/// (eqs. 9, 13). MD̂ (`objective.md_estimator`):
/// - `eq14` (the paper's eq. 14): MD̂ = mean KL − (log V − mean CE), so
///   L_φθ = mean recon + β·mean KL + α·Î + β·mean CE − β·log V: the CE term's gradient flows into z;
///   α = β is the ELBO plus β·(mean CE − mean Ĥ), and exactly the ELBO only with `ce` (Ĥ = CE);
/// - `kl_minus_mi`: MD̂ = mean KL − Î, so L_φθ = mean recon + β·mean KL + (α − β)·Î: the ELBO at α = β.
/// `vae` is the plain ELBO (α = β = 1, no classifier).
public struct Objective: Sendable, Equatable {
    public let alpha: Double
    public let beta: Double
    /// V when there is a classifier.
    public let labels: Int?
    public let miEstimator: MIEstimator
    public let mdEstimator: MDEstimator

    public init(alpha: Double, beta: Double, labels: Int?, miEstimator: MIEstimator = .entropy,
                mdEstimator: MDEstimator = .eq14) {
        self.alpha = alpha; self.beta = beta; self.labels = labels
        self.miEstimator = miEstimator; self.mdEstimator = mdEstimator
    }

    /// The objective at KL-annealing factor `f` ∈ [0, 1] (`objective.kl_anneal_steps`):
    /// β·f weighs the marginal KL MD̂ while α keeps weighing Î.
    /// For the plain VAE (α = β = 1, no Î) this is the usual KL warm-up of
    /// Bowman et al. (2016), the remedy the paper's §1 names.
    public func annealed(_ f: Double) -> Objective {
        f == 1 ? self : Objective(alpha: alpha, beta: beta * f, labels: labels, miEstimator: miEstimator, mdEstimator: mdEstimator)
    }

    /// The plain ELBO.
    public static let elbo = Objective(alpha: 1, beta: 1, labels: nil)

    /// β, the weight of Σ KL_i in ∂L_φθ.
    public var klWeight: Float { Float(beta) }

    /// Whether MD̂'s CE term reaches z separately from Î's Ĥ term: eq. 14 with an Ĥ other than CE.
    /// (With `ce`, Ĥ = CE and the two terms are one: (β − α)·mean CE.)
    var crossEntropyIntoZ: Bool { labels != nil && mdEstimator == .eq14 && miEstimator != .ce }

    /// Scale of ∂(Σ_r Ĥ_r) into z for R global classifier rows: α·Î = −(α/R)·Σ_r Ĥ_r + const, and with
    /// MD̂ = KL − Î (or eq. 14 with Ĥ = CE) β's −Î joins it: −((α − β)/R). 0 when that is 0.
    public func miGradientScale(rows: Int) -> Float {
        crossEntropyIntoZ ? Float(-alpha) / Float(rows) : Float(-(alpha - beta)) / Float(rows)
    }

    /// Scale of ∂(Σ_r CE_r) into z (ω held fixed): eq. 14's β·mean CE; 0 where it is folded into
    /// `miGradientScale` or absent.
    public func zCrossEntropyGradientScale(rows: Int) -> Float { crossEntropyIntoZ ? Float(beta) / Float(rows) : 0 }

    /// Scale of ∂(Σ_r CE_r) for the classifier's mean CE (into ω).
    public func ceGradientScale(rows: Int) -> Float { 1 / Float(rows) }

    /// The reported terms of the sums `s`: loss (L_φθ), recon, kl, and for VAE-AS mi = Î (eq. 9),
    /// md = MD̂ (eq. 14 or KL − Î), sc = mean CE, mi_md_minus_kl = Î + MD̂ − mean KL (0 by construction
    /// for kl_minus_mi; mean CE − mean Ĥ for eq. 14) and ce_minus_h = mean CE − mean Ĥ.
    public func summary(_ s: StepStats) -> [(String, Double)] {
        let recon = s.recon / Double(s.count), kl = s.kl / Double(s.count)
        // β = 1 except under KL annealing; 1·kl is kl exactly.
        guard let labels, s.rows > 0 else { return [("loss", recon + beta * kl), ("recon", recon), ("kl", kl)] }
        let hHat = s.hHat / Double(s.rows), ce = s.crossEntropy / Double(s.rows)
        let mi = Estimators.mutualInformation(meanHHat: hHat, labels: labels)
        let md = mdEstimator == .eq14
            ? Estimators.marginalKLEq14(meanKL: kl, meanCrossEntropy: ce, labels: labels)
            : Estimators.marginalKL(meanKL: kl, mutualInformation: mi)
        return [("loss", recon + alpha * mi + beta * md), ("recon", recon), ("kl", kl),
                ("mi", mi), ("md", md), ("sc", ce), ("mi_md_minus_kl", mi + md - kl), ("ce_minus_h", ce - hHat)]
    }

    /// L_φθ and the classifier's mean CE (0 without one) of the sums `s`.
    public func value(_ s: StepStats) -> (objective: Double, classifierCE: Double) {
        (summary(s)[0].1, s.rows > 0 ? s.crossEntropy / Double(s.rows) : 0)
    }
}
