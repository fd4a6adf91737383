GO ?= go
BIN := bin/electric

.PHONY: build test
build:
	$(GO) build -o $(BIN) ./cmd/electric

test:
	$(GO) test -race -count=1 ./...

proto: ## regenerate engine/satellite/satpb (needs protoc and protoc-gen-go, see satpb/gen.go)
	PATH="$$($(GO) env GOPATH)/bin:$$PATH" $(GO) generate ./engine/satellite/satpb
