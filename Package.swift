// swift-tools-version:6.1
import PackageDescription

// The target list follows the layers (README.md): C modules, core domain, engines,
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
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
    ],
    targets: [
        // C libraries, reached through thin module maps.
        .systemLibrary(name: "CFastCGI", pkgConfig: "fcgi", providers: [.apt(["libfcgi-dev"])]),
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        .systemLibrary(name: "COpenSSL", pkgConfig: "openssl", providers: [.apt(["libssl-dev"])]),
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),

        // Support, shared by every layer: JSON, server-sent events, base64url, time, white space.
        .target(name: "PriviaSupport", dependencies: [.product(name: "Logging", package: "swift-log")]),
        // Engines: the streaming engine protocol, the offline stub, the OpenAI-compatible client.
        .target(name: "PriviaEngines", dependencies: ["CCurl", "PriviaSupport"]),
        // Core domain: storage, migrations, accounts, conversations, messages.
        .target(name: "PriviaCore", dependencies: [
            "CSQLite", "COpenSSL", "PriviaSupport", .product(name: "Logging", package: "swift-log"),
            .product(name: "Atomics", package: "swift-atomics"),
        ]),
        // Chat service: one turn, whatever transport carries it.
        .target(name: "PriviaChat", dependencies: ["PriviaSupport", "PriviaCore", "PriviaEngines", .product(name: "Logging", package: "swift-log")]),
        // HTTP layer: requests and responses as plain values, routes, JSON errors, SSE.
        .target(name: "PriviaHTTP", dependencies: ["PriviaSupport", "PriviaCore", "PriviaChat", "PriviaEngines", .product(name: "Logging", package: "swift-log")]),
        // FastCGI transport: libfcgi adapter and the pre-forked pool.
        .target(name: "PriviaFastCGI", dependencies: ["CFastCGI", "PriviaSupport", "PriviaHTTP", .product(name: "Logging", package: "swift-log")]),
        // WebSocket relay: SwiftNIO server that carries turns to the pool over FastCGI.
        .target(name: "PriviaRelay", dependencies: [
            "PriviaSupport", "PriviaCore", .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),

        // jemalloc and its settings for the pool's processes (allocator.c says why).
        .target(name: "CPoolAllocator", linkerSettings: [.linkedLibrary("jemalloc")]),

        .executableTarget(name: "privia-fcgi", dependencies: ["PriviaFastCGI", "CPoolAllocator", .product(name: "Logging", package: "swift-log")]),
        .executableTarget(name: "privia-relay", dependencies: ["PriviaRelay", "PriviaSupport", .product(name: "Logging", package: "swift-log")]),
        // The benchmark's ceiling: the same pool answering a constant body (bench/README.md).
        .executableTarget(name: "privia-ceiling", dependencies: ["PriviaFastCGI", "PriviaSupport", "CPoolAllocator"]),
        .executableTarget(name: "privia", dependencies: [
            "PriviaCore",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "PriviaSupportTests", dependencies: ["PriviaSupport", .product(name: "Logging", package: "swift-log")]),
        .testTarget(name: "PriviaCoreTests", dependencies: ["PriviaSupport", "PriviaCore", "PriviaChat", "PriviaEngines"]),
        .testTarget(name: "PriviaHTTPTests", dependencies: [
            "PriviaSupport", "PriviaHTTP", "PriviaCore", "PriviaChat", "PriviaRelay",
            .product(name: "NIOCore", package: "swift-nio"),
        ]),
        .testTarget(name: "PriviaEnginesTests", dependencies: ["PriviaSupport", "PriviaEngines"]),
        .testTarget(name: "PriviaRelayTests", dependencies: [
            "PriviaSupport", "PriviaRelay", "PriviaCore", .product(name: "Logging", package: "swift-log"),
            .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOEmbedded", package: "swift-nio"),
            .product(name: "NIOWebSocket", package: "swift-nio"),
        ]),
    ]
)
