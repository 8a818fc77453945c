import Foundation
import PriviaCore
import PriviaFastCGI
import PriviaHTTP
import PriviaSupport

// privia-ceiling: the benchmark's ceiling. The same pre-forked pool as privia-fcgi (PoolMaster,
// Worker, FastCGIExchange, the per-request log line) with the same settings from the same
// environment, answering every request with one constant small JSON body and touching no
// database. Whatever Privia's endpoints do beyond this is their own cost; this is the limit
// of nginx + TLS + FastCGI + the pool on the machine. `make bench` runs it in place of
// privia-fcgi (see bench/README.md); it is not meant to be deployed.

/// Answers everything with the same 200 and the same 40-odd bytes of JSON.
struct ConstantResponder: HTTPResponder {
    static let body: JSON = ["status": "ok", "ceiling": .bool(true)]

    func respond(to request: HTTPRequest) -> HTTPResponse {
        .json(200, Self.body)
    }
}

let configuration: Configuration
do {
    configuration = try Configuration.fromEnvironment()
} catch {
    PoolProcess.fail("\(error)")
}

PoolProcess.run(configuration: configuration, responder: { ConstantResponder() })
