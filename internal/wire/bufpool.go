package wire

import (
	"bufio"
	"sync"
)

// BufferSize is the size of each Conn's bufio reader and writer. 16 KiB holds
// almost every command and row in one buffer, so reads rarely copy.
const BufferSize = 16 << 10

// ClientReadBufferSize is the reader of a client connection (NewClientConn):
// clients send commands, which are small, and a session keeps its reader
// while it waits for the next one, so an idle client holds 4 KiB instead of
// 16. A longer command is assembled in a pooled buffer as any big packet.
const ClientReadBufferSize = 4 << 10

var (
	readerPool      = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, BufferSize) }}
	smallReaderPool = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, ClientReadBufferSize) }}
	writerPool      = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, BufferSize) }}
)

// Large payload buffers come in a few size classes so that a burst of big
// queries reuses memory instead of growing the heap. Anything above the top
// class is allocated and dropped: holding huge buffers in a pool would pin
// memory for a rare case. Pools hold *[]byte so that Put does not allocate.
var bigClasses = [...]int{64 << 10, 512 << 10, 4 << 20, 32 << 20}

var bigPools [len(bigClasses)]sync.Pool

// getBig returns a buffer of length n (capacity of its size class).
func getBig(n int) *[]byte {
	for i, c := range bigClasses {
		if n <= c {
			if p, ok := bigPools[i].Get().(*[]byte); ok {
				*p = (*p)[:n]
				return p
			}
			b := make([]byte, n, c)
			return &b
		}
	}
	b := make([]byte, n)
	return &b
}

// putBig returns a buffer obtained from getBig to its size class, if its
// capacity is still exactly one (a buffer grown by append is dropped).
func putBig(p *[]byte) {
	c := cap(*p)
	for i, cl := range bigClasses {
		if c == cl {
			*p = (*p)[:0]
			bigPools[i].Put(p)
			return
		}
	}
}
