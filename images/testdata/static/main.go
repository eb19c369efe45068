// Command static is a small static program the images tests pack into
// images instead of nodeboot (which takes long to build).
package main

import "fmt"

func main() { fmt.Println("static") }
