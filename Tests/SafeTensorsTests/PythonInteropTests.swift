import Foundation
import XCTest
import SafeTensors

/// Checks files against the reference implementation (the `safetensors`
/// Python package). A missing python3 or package is a failure, not a skip:
/// `scripts/setup.sh` installs it.
final class PythonInteropTests: XCTestCase {
    var dir = ""

    override func setUpWithError() throws {
        dir = NSTemporaryDirectory() + "vaeas-st-py-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: dir) }

    static let setupHint = "python3 with the numpy and safetensors packages is required for the "
        + "interoperability tests; run scripts/setup.sh (it installs them with pip)"

    /// Runs `python3 -c script args…`; fails the test (with the setup hint when
    /// the interpreter or the package is missing) and returns nil on error.
    private func python(_ script: String, _ args: [String],
                        file: StaticString = #filePath, line: UInt = #line) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + args
        // stderr goes to a file so that only one pipe needs draining.
        let errPath = "\(dir)/python-stderr-\(UUID().uuidString).txt"
        FileManager.default.createFile(atPath: errPath, contents: nil)
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle(forWritingAtPath: errPath)
        do {
            try process.run()
        } catch {
            XCTFail("cannot start python3 (\(error)); \(Self.setupHint)", file: file, line: line)
            return nil
        }
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let errData = FileManager.default.contents(atPath: errPath) ?? Data()
        let stderr = String(decoding: errData, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            let missing = process.terminationStatus == 127 || stderr.contains("ModuleNotFoundError")
                || stderr.contains("No such file")
            XCTFail((missing ? Self.setupHint + ". " : "python3 failed: ") + stderr, file: file, line: line)
            return nil
        }
        return String(decoding: outData, as: UTF8.self)
    }

    private static let readScript = """
        import json, math, sys
        import numpy as np
        from safetensors import safe_open
        from safetensors.numpy import load_file
        path = sys.argv[1]
        tensors = load_file(path)
        with safe_open(path, framework="np") as f:
            metadata = f.metadata()
        out = {"metadata": metadata, "tensors": {}}
        for name, a in tensors.items():
            out["tensors"][name] = {
                "dtype": str(a.dtype),
                "shape": list(a.shape),
                "sum": (lambda s: s if math.isfinite(s) else None)(float(a.astype(np.float64).sum())),
                "bits": [int(b) for b in a.reshape(-1).view(np.uint32)],
            }
        print(json.dumps(out))
        """

    func testPythonReadsSwiftFile() throws {
        var w = SafeTensorsWriter()
        w.metadata = ["format": "vaeas-dist", "step": "1500", "note": "quote \" backslash \\ newline\n ü"]
        let weights = (0..<60).map { Float($0) * 0.25 - 3.1 }
        try w.add("encoder.layers.0.weight", shape: [6, 10], data: weights)
        try w.add("encoder.layers.0.bias", shape: [10], data: (0..<10).map { Float($0) / 3 })
        try w.add("special", shape: [2, 2], data: [-0.0, .infinity, .leastNonzeroMagnitude, 1e30])
        try w.add("scalar", shape: [], data: [7.5])
        let path = "\(dir)/swift.safetensors"
        try w.write(to: path)

        let output = try XCTUnwrap(python(Self.readScript, [path]))
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], output)
        XCTAssertEqual(json["metadata"] as? [String: String], w.metadata)
        let tensors = try XCTUnwrap(json["tensors"] as? [String: [String: Any]])
        XCTAssertEqual(Set(tensors.keys), ["encoder.layers.0.weight", "encoder.layers.0.bias", "special", "scalar"])

        let expected: [String: ([Int], [Float])] = [
            "encoder.layers.0.weight": ([6, 10], weights),
            "encoder.layers.0.bias": ([10], (0..<10).map { Float($0) / 3 }),
            "special": ([2, 2], [-0.0, .infinity, .leastNonzeroMagnitude, 1e30]),
            "scalar": ([], [7.5]),
        ]
        for (name, (shape, values)) in expected {
            let t = try XCTUnwrap(tensors[name], name)
            XCTAssertEqual(t["dtype"] as? String, "float32", name)
            XCTAssertEqual(t["shape"] as? [Int], shape, name)
            XCTAssertEqual((t["bits"] as? [NSNumber])?.map { $0.uint32Value }, values.map(\.bitPattern), name)
            let sum = values.reduce(0.0) { $0 + Double($1) }
            if sum.isFinite {
                XCTAssertEqual(try XCTUnwrap(t["sum"] as? Double, name), sum, accuracy: 1e-9 * max(1, abs(sum)), name)
            } else {
                XCTAssertTrue(t["sum"] is NSNull, name)
            }
        }
    }

    private static let writeScript = """
        import sys
        import numpy as np
        from safetensors.numpy import save_file
        out = sys.argv[1]
        save_file({
            "decoder.weight": (np.arange(24, dtype=np.float32) * np.float32(0.5) - np.float32(4)).reshape(2, 3, 4),
            "decoder.bias": np.array([1.5, -2.25, 3.0], dtype=np.float32),
            "alpha": np.array(0.125, dtype=np.float32),
        }, out, metadata={"origin": "python", "unicode": "ü β"})
        save_file({"w64": np.ones((2, 2), dtype=np.float64)}, out + ".f64")
        """

    func testSwiftReadsPythonFile() throws {
        let path = "\(dir)/python.safetensors"
        _ = try XCTUnwrap(python(Self.writeScript, [path]))
        let f = try SafeTensorsFile.load(path: path)
        XCTAssertEqual(f.metadata, ["origin": "python", "unicode": "ü β"])
        XCTAssertEqual(Set(f.names), ["decoder.weight", "decoder.bias", "alpha"])
        XCTAssertEqual(f.names.count, 3)
        XCTAssertEqual(try f.shape(of: "decoder.weight"), [2, 3, 4])
        XCTAssertEqual(try f.floats("decoder.weight"), (0..<24).map { Float($0) * 0.5 - 4 })
        XCTAssertEqual(try f.floats("decoder.bias"), [1.5, -2.25, 3.0])
        XCTAssertEqual(try f.shape(of: "alpha"), [])
        XCTAssertEqual(try f.floats("alpha"), [0.125])

        // A float64 file from the reference writer must be refused clearly.
        XCTAssertThrowsError(try SafeTensorsFile.load(path: path + ".f64")) { error in
            XCTAssertTrue("\(error)".contains("tensor \"w64\" has dtype F64; only F32 is supported"), "\(error)")
        }
    }

    /// Crafted data-buffer layouts: the reference reader (`safetensors.numpy.load_file`) and ours
    /// must accept and refuse the same files (ranges sorted by offset cover the buffer exactly:
    /// no overlap, no gap, nothing after the last tensor, nothing beyond the file).
    func testDataBufferLayoutVerdictsMatchTheReference() throws {
        func entry(_ name: String, _ shape: [Int], _ begin: Int, _ end: Int) -> String {
            "\"\(name)\":{\"dtype\":\"F32\",\"shape\":\(shape),\"data_offsets\":[\(begin),\(end)]}"
        }
        let cases: [(name: String, entries: [String], dataBytes: Int)] = [
            ("packed", [entry("a", [2], 0, 8), entry("b", [1], 8, 12)], 12),
            ("reordered", [entry("b", [1], 8, 12), entry("a", [2], 0, 8)], 12),
            ("empty-tensors", [entry("e", [0], 0, 0), entry("f", [0], 0, 0), entry("a", [1], 0, 4)], 4),
            ("no-tensors", [], 0),
            ("overlap", [entry("a", [2], 0, 8), entry("b", [2], 4, 12)], 12),
            ("same-range", [entry("a", [2], 0, 8), entry("b", [2], 0, 8)], 8),
            ("gap", [entry("a", [1], 0, 4), entry("b", [1], 8, 12)], 12),
            ("gap-at-start", [entry("a", [1], 4, 8)], 8),
            ("trailing", [entry("a", [1], 0, 4)], 8),
            ("trailing-no-tensors", [], 4),
            ("beyond-file", [entry("a", [2], 0, 8)], 4),
            ("shape-mismatch", [entry("a", [3], 0, 8)], 8),
        ]
        var paths: [String] = []
        for c in cases {
            var h = Array(("{" + c.entries.joined(separator: ",") + "}").utf8)
            while (8 + h.count) % 8 != 0 { h.append(UInt8(ascii: " ")) }
            var bytes: [UInt8] = []
            withUnsafeBytes(of: UInt64(h.count).littleEndian) { bytes.append(contentsOf: $0) }
            bytes += h + [UInt8](repeating: 0, count: c.dataBytes)
            let path = "\(dir)/\(c.name).safetensors"
            try Data(bytes).write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let script = """
            import sys
            from safetensors.numpy import load_file
            for path in sys.argv[1:]:
                try:
                    load_file(path)
                    print("ok")
                except Exception as e:
                    print("error")
            """
        let output = try XCTUnwrap(python(script, paths))
        let reference = output.split(separator: "\n").map(String.init)
        XCTAssertEqual(reference.count, cases.count, output)
        for (c, (path, verdict)) in zip(cases, zip(paths, reference)) {
            let ours: String
            do { _ = try SafeTensorsFile.load(path: path); ours = "ok" } catch { ours = "error (\(error))" }
            XCTAssertEqual(ours.hasPrefix("ok") ? "ok" : "error", verdict, "\(c.name): reference says \(verdict), ours: \(ours)")
        }
    }
}
