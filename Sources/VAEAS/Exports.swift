// `import VAEAS` brings every layer of the trainer: the CLI and the tests use
// this; the layers themselves import only what their Package.swift
// dependencies allow (VAEASCore cannot see a communicator, only VAEASMPI sees MPI).
@_exported import VAEASConfig
@_exported import VAEASCore
@_exported import VAEASDistributed
@_exported import VAEASMPI
@_exported import VAEASEvaluation
@_exported import VAEASTraining
