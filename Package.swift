// swift-tools-version:6.1
import PackageDescription

// The target list mirrors ARCHITECTURE.md: C modules, core domain, engines,
// chat service, HTTP layer, transports, executables.
let package = Package(
    name: "Privia",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "privia-fcgi", targets: ["privia-fcgi"]),
        .executable(name: "privia-relay", targets: ["privia-relay"]),
        .executable(name: "privia", targets: ["privia"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        // Already built for SwiftNIO; the core uses it for one counter shared between processes.
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
    ],
    targets: [
        // C libraries, reached through thin module maps.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // Engines: the streaming engine protocol, the offline stub, the OpenAI-compatible client.
        .target(name: "PriviaEngines", dependencies: ["CCurl"]),
        // Core domain: storage, migrations, accounts, conversations, messages.
        .target(name: "PriviaCore", dependencies: [
            "CSQLite", "COpenSSL", .product(name: "Atomics", package: "swift-atomics"),
        ]),
        // Chat service: one turn, whatever transport carries it.
        .target(name: "PriviaChat", dependencies: ["PriviaCore", "PriviaEngines"]),
        // HTTP layer: requests and responses as plain values, routes, JSON errors, SSE.
        .target(name: "PriviaHTTP", dependencies: ["PriviaCore", "PriviaChat", "PriviaEngines"]),
        // FastCGI transport: libfcgi adapter and the pre-forked pool.
        .target(name: "PriviaFastCGI", dependencies: ["CFastCGI", "PriviaHTTP"]),
        // WebSocket relay: SwiftNIO server that carries turns to the pool over FastCGI.
        .target(name: "PriviaRelay", dependencies: [
            "PriviaCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),

        // jemalloc and its settings for the pool's processes (allocator.c says why).
        .target(name: "CPoolAllocator", linkerSettings: [.linkedLibrary("jemalloc")]),

        .executableTarget(name: "privia-fcgi", dependencies: ["PriviaFastCGI", "CPoolAllocator"]),
        .executableTarget(name: "privia-relay", dependencies: ["PriviaRelay"]),
        // The benchmark's ceiling: the same pool answering a constant body (bench/README.md).
        .executableTarget(name: "privia-ceiling", dependencies: ["PriviaFastCGI", "CPoolAllocator"]),
        .executableTarget(name: "privia", dependencies: [
            "PriviaCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "PriviaCoreTests", dependencies: ["PriviaCore", "PriviaChat", "PriviaEngines"]),
        .testTarget(name: "PriviaHTTPTests", dependencies: ["PriviaHTTP", "PriviaCore", "PriviaChat"]),
        .testTarget(name: "PriviaEnginesTests", dependencies: ["PriviaEngines"]),
        .testTarget(name: "PriviaRelayTests", dependencies: [
            "PriviaRelay", "PriviaCore",
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
    ]
)
