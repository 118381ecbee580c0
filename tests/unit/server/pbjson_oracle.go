// tests/unit/server/pbjson_oracle.go - the Go side of pbjson_diff.py:
// decodes JSON bodies as etcd 3.4's gateway does (Debian's grpc-gateway
// 1.6.4 runtime.JSONPb, golang/protobuf 1.3 jsonpb, etcd's etcdserverpb)
// and prints the message as the gRPC server would get it, re-encoded, or
// the error text. Build in GOPATH mode:
//   mkdir -p $D/src/oracle && cp pbjson_oracle.go $D/src/oracle/main.go
//   GOPATH=$D:/usr/share/gocode GO111MODULE=off go build -o $D/oracle oracle
package main

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"reflect"
	"strings"

	"github.com/golang/protobuf/proto"
	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	_ "go.etcd.io/etcd/etcdserver/etcdserverpb"
)

func main() {
	m := &runtime.JSONPb{OrigName: true}
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 64<<20)
	out := bufio.NewWriter(os.Stdout)
	for in.Scan() {
		parts := strings.SplitN(in.Text(), "\t", 2)
		body, _ := base64.StdEncoding.DecodeString(parts[1])
		t := proto.MessageType(parts[0])
		if t == nil {
			fmt.Fprintf(out, "NOTYPE\n")
			out.Flush()
			continue
		}
		msg := reflect.New(t.Elem()).Interface().(proto.Message)
		err := m.NewDecoder(bytes.NewReader(body)).Decode(msg)
		if err == io.EOF {
			fmt.Fprintf(out, "EOF\n")
		} else if err != nil {
			fmt.Fprintf(out, "ERR\t%s\n", strings.ReplaceAll(err.Error(), "\n", "\\n"))
		} else {
			func() {
				defer func() {
					if r := recover(); r != nil {
						fmt.Fprintf(out, "PANIC\n")
					}
				}()
				// what the gRPC server would see
				pb, err := proto.Marshal(msg)
				if err != nil {
					fmt.Fprintf(out, "MERR\t%s\n", err)
					return
				}
				msg2 := reflect.New(t.Elem()).Interface().(proto.Message)
				if err := proto.Unmarshal(pb, msg2); err != nil {
					fmt.Fprintf(out, "MERR\t%s\n", err)
					return
				}
				b, err := m.Marshal(msg2)
				if err != nil {
					fmt.Fprintf(out, "MERR\t%s\n", err)
				} else {
					fmt.Fprintf(out, "OK\t%s\n", b)
				}
			}()
		}
		out.Flush()
	}
}
