import Foundation
import XCTest

/// Issue #21, defects 2 and 3 and the swapped data file: a checkpoint resumes
/// only the run it belongs to (its config's trajectory keys, its data's
/// content, its parameter layout), a hand-edited manifest is refused, and every
/// change made at a resume is asked for and recorded in run.jsonl.
final class RunIdentityTests: XCTestCase {
    /// 600 samples, 12 steps per epoch; stopped at step 17 with a checkpoint.
    func stopped(_ name: String, _ extra: [String] = [], dataDir: String = CLI.sharedData) throws -> String {
        let out = CLI.temporaryDirectory(name)
        var a = ["train", "--out", out, "--overwrite", "--data-dir", dataDir]
        for s in ["data.name=binarized-mnist", "data.limit=600", "model.latent=8", "model.hidden=32", "model.enc_layers=2",
                  "model.dec_layers=2", "train.batch=50", "train.epochs=3", "eval.every=1", "train.max_steps=17",
                  "train.keep_checkpoints=0"] {
            a += ["--set", s]
        }
        let r = try CLI.run(a + extra)
        XCTAssertEqual(r.status, 0, r.output)
        return out
    }

    func text(_ path: String) throws -> String { try String(contentsOfFile: path, encoding: .utf8) }

    func lastRunRecord(_ dir: String) throws -> [String: Any] {
        try XCTUnwrap(try CLI.jsonLines(dir + "/run.jsonl").last)
    }

    /// Run A's checkpoints copied into run B (another seed; another width):
    /// refused, naming the keys and both values, config.yaml untouched. Before,
    /// B continued from A's weights and its config.yaml was rewritten.
    func testAnotherRunsCheckpointIsRefused() throws {
        let a = try stopped("identity-a", ["--set", "train.seed=7"])
        for (other, key) in [("train.seed=8", "train.seed"), ("model.hidden=16", "model.hidden")] {
            let b = try stopped("identity-b", ["--set", "train.seed=7", "--set", other])
            try FileManager.default.removeItem(atPath: b + "/checkpoints")
            try FileManager.default.copyItem(atPath: a + "/checkpoints", toPath: b + "/checkpoints")
            let before = try text(b + "/config.yaml")
            let r = try CLI.run(["train", "--resume", b, "--set", "train.max_steps=0"])
            XCTAssertNotEqual(r.status, 0, r.output)
            let value = try XCTUnwrap(other.split(separator: "=").last)
            XCTAssertTrue(r.stderr.contains("does not belong to this run"), r.stderr)
            XCTAssertTrue(r.stderr.contains("\(key)=\(value)") && r.stderr.contains("--allow-config-change \(key)"), r.stderr)
            XCTAssertEqual(try text(b + "/config.yaml"), before, "config.yaml must not be rewritten")
        }
        // Asked for explicitly: B (seed 8 from here on) continues from A's weights, and run.jsonl records it.
        let b = try stopped("identity-b", ["--set", "train.seed=8"])
        try FileManager.default.removeItem(atPath: b + "/checkpoints")
        try FileManager.default.copyItem(atPath: a + "/checkpoints", toPath: b + "/checkpoints")
        let r = try CLI.run(["train", "--resume", b, "--set", "train.max_steps=0", "--allow-config-change", "train.seed"])
        XCTAssertEqual(r.status, 0, r.output)
        XCTAssertTrue(r.stdout.contains("train.seed: 7 → 8"), r.stdout)
        let changes = try XCTUnwrap(try lastRunRecord(b)["config_changes"] as? [String: [String]])
        XCTAssertEqual(changes["train.seed"], ["7", "8"])
        XCTAssertEqual(changes["train.max_steps"], ["17", "0"])
    }

    /// A manifest edited by hand (valid JSON) is refused: its CRC-32 no longer
    /// matches manifest.crc32, so --resume names it and takes the previous
    /// checkpoint. Edits that also rewrite the checksum meet the next checks:
    /// the position against the directory, the tensors and the data; the
    /// config against config.yaml. Before, every such edit was obeyed.
    func testHandEditedManifestsAreRefused() throws {
        let out = try stopped("identity-manifest", ["--set", "train.checkpoint_steps=5"])
        let newest = out + "/checkpoints/step-000000017"
        let manifest = newest + "/manifest.json"
        let original = try Data(contentsOf: URL(fileURLWithPath: manifest))
        func edit(_ change: (inout [String: Any]) -> Void, rewriteChecksum: Bool) throws {
            var m = try XCTUnwrap(JSONSerialization.jsonObject(with: original) as? [String: Any])
            change(&m)
            let bytes = try JSONSerialization.data(withJSONObject: m, options: [.sortedKeys])
            try bytes.write(to: URL(fileURLWithPath: manifest))
            if rewriteChecksum {
                let crc = try CLI.run(["-c", "import sys, zlib; print('%08x' % zlib.crc32(open(sys.argv[1], 'rb').read()))", manifest],
                                      executable: "/usr/bin/python3")
                try crc.stdout.write(toFile: newest + "/manifest.crc32", atomically: true, encoding: .utf8)
            }
        }
        func position(_ key: String, _ value: Int) -> (inout [String: Any]) -> Void {
            { m in var p = m["position"] as! [String: Any]; p[key] = value; m["position"] = p }
        }
        // Each edit, the fallback or error it meets, restored between cases.
        let cases: [(String, (inout [String: Any]) -> Void, Bool, String)] = [
            ("stepInEpoch", position("stepInEpoch", 3), false, "manifest.crc32 says"),
            ("globalStep", position("globalStep", 12), false, "manifest.crc32 says"),
            ("alpha", { m in m["config"] = (m["config"] as! String).replacingOccurrences(of: "alpha: 1", with: "alpha: 2") },
             false, "manifest.crc32 says"),
            ("globalStep, checksum rewritten", position("globalStep", 12), true, "does not match the directory's step 17"),
        ]
        for (what, change, rewrite, expected) in cases {
            try edit(change, rewriteChecksum: rewrite)
            let r = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=18"])
            XCTAssertTrue(r.stdout.contains(expected), "\(what): \(r.stdout)")
            XCTAssertTrue(r.stdout.contains("resuming \(out) from step-000000015"), "\(what): falls back to the previous one: \(r.stdout)")
            XCTAssertEqual(r.status, 0, r.output)
            // Back to the state before this case: the original manifest, the run stopped at 17.
            try original.write(to: URL(fileURLWithPath: manifest))
            _ = try CLI.run(["-c", "import sys, zlib; open(sys.argv[2], 'w').write('%08x\\n' % zlib.crc32(open(sys.argv[1], 'rb').read()))",
                             manifest, newest + "/manifest.crc32"], executable: "/usr/bin/python3")
            try? FileManager.default.removeItem(atPath: out + "/checkpoints/step-000000018")
        }
        // Consistent forgeries of the position (stepInEpoch with its checksum) are caught against the run: not a point of it.
        try edit(position("stepInEpoch", 3), rewriteChecksum: true)
        for name in ["step-000000015", "step-000000010", "step-000000005"] {
            try FileManager.default.removeItem(atPath: out + "/checkpoints/" + name)
        }
        let r = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=18"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("is not a point of this run"), r.output)
    }

    /// A data directory (`NAME`/binarized-mnist) linking to the shared files;
    /// `inverted`: its training file replaced by one of the same shape with
    /// every pixel inverted.
    func dataDirectory(_ name: String, inverted: Bool) throws -> String {
        let root = CLI.temporaryDirectory(name), data = root + "/binarized-mnist"
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true)
        let shared = CLI.sharedData + "/binarized-mnist"
        try FileManager.default.createSymbolicLink(atPath: data + "/test-images-idx3-ubyte.gz",
                                                   withDestinationPath: shared + "/test-images-idx3-ubyte.gz")
        let train = data + "/train-images-idx3-ubyte.gz"
        if !inverted {
            try FileManager.default.createSymbolicLink(atPath: train, withDestinationPath: shared + "/train-images-idx3-ubyte.gz")
            return root
        }
        let swap = """
            import gzip, sys
            raw = bytearray(gzip.open(sys.argv[1]).read())
            raw[16:] = bytes(255 - b for b in raw[16:])
            gzip.open(sys.argv[2], 'wb').write(bytes(raw))
            """
        let w = try CLI.run(["-c", swap, shared + "/train-images-idx3-ubyte.gz", train], executable: "/usr/bin/python3")
        XCTAssertEqual(w.status, 0, w.output)
        return root
    }

    /// The training file replaced by another of the same shape (every pixel
    /// inverted): --resume names the split and both files' content CRC-32s;
    /// --allow-data-change continues. Before, the swap went unnoticed.
    func testSwappedTrainingFileIsRefused() throws {
        let root = try dataDirectory("identity-data", inverted: false)
        let out = try stopped("identity-swap", dataDir: root)
        let r0 = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=18"])
        XCTAssertEqual(r0.status, 0, "the same data resume: \(r0.output)")
        try FileManager.default.removeItem(atPath: root)
        try FileManager.default.moveItem(atPath: try dataDirectory("identity-data-inverted", inverted: true), toPath: root)
        let r = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=19"])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("the train data differ") && r.stderr.contains("train-images-idx3-ubyte.gz")
                      && r.stderr.contains("--allow-data-change"), r.output)
        let allowed = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=19", "--allow-data-change"])
        XCTAssertEqual(allowed.status, 0, allowed.output)
    }

    /// One rank reading other data (same shape, other content) than rank 0:
    /// the job ends at start naming the rank. Before, it trained on its shard.
    func testARankWithOtherDataIsNamed() throws {
        let same = try dataDirectory("identity-rank0", inverted: false), other = try dataDirectory("identity-rank1", inverted: true)
        let out = CLI.temporaryDirectory("identity-mpmd")
        let common = ["train", "--out", out, "--overwrite", "--set", "data.name=binarized-mnist", "--set", "data.limit=600",
                      "--set", "eval.every=0", "--set", "train.epochs=1", "--set", "model.hidden=32"]
        let r = try CLI.run(["--oversubscribe", "--bind-to", "none", "-n", "1", CLI.binary] + common + ["--data-dir", same]
                            + [":", "-n", "1", CLI.binary] + common + ["--data-dir", other],
                            timeout: 60, executable: "/usr/bin/mpirun")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("rank 1 read data with other content than rank 0"), r.output)
        let metrics = (try? String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)) ?? ""
        XCTAssertTrue(metrics.isEmpty, "no epoch trained: \(metrics)")
    }

    /// Every change at a resume is recorded in run.jsonl; a trajectory key
    /// needs --allow-config-change, an unknown key is named as unknown, and a
    /// change allowed once is accepted again when a requeue resumes from an
    /// older checkpoint (config.yaml already holds it).
    func testResumeChangesAreAskedForAndRecorded() throws {
        let out = try stopped("identity-changes", ["--set", "train.checkpoint_steps=5"])
        XCTAssertNotNil(try lastRunRecord(out)["identity"] as? [String: Any], "a new run records its identity")
        let refused = try CLI.run(["train", "--resume", out, "--set", "train.lr=0.0005"])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("cannot change on --resume") && refused.stderr.contains("--allow-config-change train.lr"),
                      refused.stderr)
        let unknown = try CLI.run(["train", "--resume", out, "--set", "train.lrr=0.0005"])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("unknown config key 'train.lrr'"), unknown.stderr)
        let r = try CLI.run(["train", "--resume", out, "--set", "train.lr=0.0005", "--allow-config-change", "train.lr",
                             "--set", "train.max_steps=20"])
        XCTAssertEqual(r.status, 0, r.output)
        let record = try lastRunRecord(out)
        XCTAssertEqual(record["config_changes"] as? [String: [String]],
                       ["train.lr": ["0.001", "0.0005"], "train.max_steps": ["17", "20"]])
        XCTAssertTrue(try text(out + "/config.yaml").contains("lr: 0.0005"))
        // A requeue that finds only an older checkpoint (written at lr 0.001): the recorded change stands.
        for name in ["step-000000020", "step-000000017"] { try FileManager.default.removeItem(atPath: out + "/checkpoints/" + name) }
        let again = try CLI.run(["train", "--resume", out, "--set", "train.max_steps=20"])
        XCTAssertEqual(again.status, 0, again.output)
        XCTAssertTrue(again.stdout.contains("from step-000000015") && again.stdout.contains("train.lr: 0.001 → 0.0005"), again.stdout)
    }
}
