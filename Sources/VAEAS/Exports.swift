// The typed configuration choices (Activation, MIEstimator, …) are part of this
// module's vocabulary: importing VAEAS imports them.
@_exported import VAEASConfig
