// Package satpb is the generated Go code of the Satellite protocol
// Electric.Satellite.v0_2 (satellite.proto), plus the frame type ids that
// prefix every message on the WebSocket. It owns the wire vocabulary only;
// sessions and framing rules live in package satellite.
//
// Regenerate with `make proto`. It needs protoc (Debian: apt-get install -y
// protobuf-compiler) and protoc-gen-go at the version of
// google.golang.org/protobuf in go.mod:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.12
package satpb

//go:generate protoc --proto_path=. --go_out=. --go_opt=paths=source_relative satellite.proto
