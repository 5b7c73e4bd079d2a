import TLoRACLI

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

signal(SIGPIPE, SIG_IGN)
exit(TLoRACommand.main(arguments: Array(CommandLine.arguments.dropFirst())))
