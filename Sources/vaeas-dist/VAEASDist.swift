import ArgumentParser

@main
struct VAEASDist: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vaeas-dist",
        abstract: "Distributed data-parallel trainer for VAE and VAE-AS (run under mpirun for several ranks).",
        discussion: """
        A plain `vaeas-dist …` is one rank; `mpirun -n P vaeas-dist …` runs P data-parallel ranks.
        Only rank 0 prints and writes files.

        Examples:
          mpirun -n 2 vaeas-dist train --config configs/fashion-mnist-vaeas.yaml --out runs/demo
          vaeas-dist eval --checkpoint runs/demo/model.safetensors
          mpirun -n 3 vaeas-dist train --resume runs/demo --set train.epochs=10
        """,
        version: BuildInfo.text,
        subcommands: [Train.self, Evaluate.self, Estimate.self, Reconstruct.self, Sample.self, Bench.self, ShowConfig.self])
}
