GO ?= go
BIN := bin/electric

.PHONY: build test
build:
	$(GO) build -o $(BIN) ./cmd/electric

test:
	$(GO) test -race -count=1 ./...
