"""The PyTorch reference of vaeas-dist (issue #12): the model rebuilt from a checkpoint (model), an
independent trainer (train, with its config and data), the one-step gradient cross-check run by the Swift
test TorchCrossCheckTests (crosscheck) and the ours-vs-PyTorch curves (overlay).

Importing the package imports no torch: model, train and crosscheck do, overlay does not."""
