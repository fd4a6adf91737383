package satpb

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// MsgType is the first byte of every frame (spec §2.2). The table must match
// the client's dist/util/proto.js exactly.
type MsgType byte

const (
	TypeErrorResp              MsgType = 0
	TypeAuthReq                MsgType = 1
	TypeAuthResp               MsgType = 2
	TypePingReq                MsgType = 3
	TypePingResp               MsgType = 4
	TypeInStartReplicationReq  MsgType = 5
	TypeInStartReplicationResp MsgType = 6
	TypeInStopReplicationReq   MsgType = 7
	TypeInStopReplicationResp  MsgType = 8
	TypeOpLog                  MsgType = 9
	TypeRelation               MsgType = 10
	TypeMigrationNotification  MsgType = 11
)

// ProtocolVersion is the protobuf package name; it doubles as the version
// string of the PROTO_VERSION auth header.
const ProtocolVersion = "Electric.Satellite.v0_2"

// ErrUnknownType is returned by Decode for a type byte outside the table.
var ErrUnknownType = errors.New("unknown message type")

// ErrEmptyFrame is returned by Decode for a zero-length frame.
var ErrEmptyFrame = errors.New("empty frame")

func (t MsgType) String() string {
	switch t {
	case TypeErrorResp:
		return "SatErrorResp"
	case TypeAuthReq:
		return "SatAuthReq"
	case TypeAuthResp:
		return "SatAuthResp"
	case TypePingReq:
		return "SatPingReq"
	case TypePingResp:
		return "SatPingResp"
	case TypeInStartReplicationReq:
		return "SatInStartReplicationReq"
	case TypeInStartReplicationResp:
		return "SatInStartReplicationResp"
	case TypeInStopReplicationReq:
		return "SatInStopReplicationReq"
	case TypeInStopReplicationResp:
		return "SatInStopReplicationResp"
	case TypeOpLog:
		return "SatOpLog"
	case TypeRelation:
		return "SatRelation"
	case TypeMigrationNotification:
		return "SatMigrationNotification"
	}
	return fmt.Sprintf("MsgType(%d)", byte(t))
}

// New returns an empty message of type t, or nil if t is not in the table.
func (t MsgType) New() proto.Message {
	switch t {
	case TypeErrorResp:
		return &SatErrorResp{}
	case TypeAuthReq:
		return &SatAuthReq{}
	case TypeAuthResp:
		return &SatAuthResp{}
	case TypePingReq:
		return &SatPingReq{}
	case TypePingResp:
		return &SatPingResp{}
	case TypeInStartReplicationReq:
		return &SatInStartReplicationReq{}
	case TypeInStartReplicationResp:
		return &SatInStartReplicationResp{}
	case TypeInStopReplicationReq:
		return &SatInStopReplicationReq{}
	case TypeInStopReplicationResp:
		return &SatInStopReplicationResp{}
	case TypeOpLog:
		return &SatOpLog{}
	case TypeRelation:
		return &SatRelation{}
	case TypeMigrationNotification:
		return &SatMigrationNotification{}
	}
	return nil
}

// TypeOf returns the frame type id of a standalone message; ok is false for
// messages that only appear nested.
func TypeOf(m proto.Message) (t MsgType, ok bool) {
	switch m.(type) {
	case *SatErrorResp:
		return TypeErrorResp, true
	case *SatAuthReq:
		return TypeAuthReq, true
	case *SatAuthResp:
		return TypeAuthResp, true
	case *SatPingReq:
		return TypePingReq, true
	case *SatPingResp:
		return TypePingResp, true
	case *SatInStartReplicationReq:
		return TypeInStartReplicationReq, true
	case *SatInStartReplicationResp:
		return TypeInStartReplicationResp, true
	case *SatInStopReplicationReq:
		return TypeInStopReplicationReq, true
	case *SatInStopReplicationResp:
		return TypeInStopReplicationResp, true
	case *SatOpLog:
		return TypeOpLog, true
	case *SatRelation:
		return TypeRelation, true
	case *SatMigrationNotification:
		return TypeMigrationNotification, true
	}
	return 0, false
}

// Encode returns the frame for m: its type byte followed by its protobuf
// encoding.
func Encode(m proto.Message) ([]byte, error) {
	t, ok := TypeOf(m)
	if !ok {
		return nil, fmt.Errorf("encoding frame: %T cannot be sent standalone", m)
	}
	buf := make([]byte, 1, 1+proto.Size(m))
	buf[0] = byte(t)
	buf, err := proto.MarshalOptions{}.MarshalAppend(buf, m)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", t, err)
	}
	return buf, nil
}

// Decode parses one frame.
func Decode(frame []byte) (proto.Message, error) {
	if len(frame) == 0 {
		return nil, fmt.Errorf("decoding frame: %w", ErrEmptyFrame)
	}
	t := MsgType(frame[0])
	m := t.New()
	if m == nil {
		return nil, fmt.Errorf("decoding frame: %w %d", ErrUnknownType, frame[0])
	}
	if err := proto.Unmarshal(frame[1:], m); err != nil {
		return nil, fmt.Errorf("decoding %s: %w", t, err)
	}
	return m, nil
}
