import TLoRACLI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// First, before any thread starts: signals that end the process remove its temporaries.
TLoRACommand.prepareProcess()
exit(TLoRACommand.main(arguments: Array(CommandLine.arguments.dropFirst())))
