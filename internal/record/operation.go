package record

import (
	"github.com/go-ftl2/ftlstate/state"
)

// operationFields is the field count of an operation record, the version
// included.
const operationFields = 8

// EncodeOperation returns the encoding of op. See AppendOperation.
func EncodeOperation(op *state.Operation) ([]byte, error) { return AppendOperation(nil, op) }

// AppendOperation appends the encoding of op to dst. An operation that
// breaks the rules of (*state.Operation).Normalize gives a
// *state.FieldError (matching state.ErrInvalid) and dst unchanged.
func AppendOperation(dst []byte, op *state.Operation) ([]byte, error) {
	if op == nil {
		return dst, &state.FieldError{Msg: "nil operation"}
	}
	if err := checkOperation(op); err != nil {
		return dst, err
	}
	e := getEncoder(dst)
	return e.finish(dst, e.operation(op))
}

// checkOperation applies the rules of Operation.Normalize that the
// encoder does not check as it writes: names and the action.
func checkOperation(op *state.Operation) error {
	if err := state.ValidateName(op.ID); err != nil {
		return err.(*state.FieldError).Under("id")
	}
	switch op.Action {
	case state.ActionCreate, state.ActionUpdate, state.ActionDelete:
	default:
		return &state.FieldError{Path: "action", Msg: "must be create, update or delete"}
	}
	if err := state.ValidateName(op.Resource); err != nil {
		return err.(*state.FieldError).Under("resource")
	}
	if op.Host != "" {
		if err := state.ValidateName(op.Host); err != nil {
			return err.(*state.FieldError).Under("host")
		}
	}
	return nil
}

func (e *encoder) operation(op *state.Operation) error {
	e.begin(operationFields)
	e.str(op.ID)
	e.str(op.Action)
	e.str(op.Resource)
	e.str(op.Host)
	if err := e.topMap(op.Data, "data"); err != nil {
		return err
	}
	if err := e.time(op.StartedAt, "started_at"); err != nil {
		return err
	}
	return e.text(op.Holder, "holder")
}

// DecodeOperation decodes an operation record. Errors match
// state.ErrCorrupt.
func DecodeOperation(b []byte) (*state.Operation, error) {
	d := newDecoder(b)
	if err := d.header("operation", operationFields); err != nil {
		return nil, err
	}
	op := &state.Operation{}
	var err error
	for _, f := range []*string{&op.ID, &op.Action, &op.Resource, &op.Host} {
		if *f, err = d.str(); err != nil {
			return nil, err
		}
	}
	if op.Data, err = d.topMap(); err != nil {
		return nil, err
	}
	if op.StartedAt, err = d.time(); err != nil {
		return nil, err
	}
	if op.Holder, err = d.str(); err != nil {
		return nil, err
	}
	if err := checkOperation(op); err != nil {
		return nil, d.invalid("", err)
	}
	return op, d.end()
}
