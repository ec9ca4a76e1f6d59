package main

import "errors"

type loadCmd struct{}

func (loadCmd) Run() error { return errors.New("not built yet") }
