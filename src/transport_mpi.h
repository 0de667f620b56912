#pragma once
// The Transport over MPI (Open MPI 4.1 from Debian; any MPI 3 with MPI_THREAD_MULTIPLE): the only file pair that
// includes mpi.h.
//
// Wire format, per message on a channel: the encoded Header as MPI_BYTEs on tag 16 + 2 * channel, then one message
// per value (per 1 GiB block) on tag 17 + 2 * channel, from and into the values' own buffers, all posted at once: the
// values of a request go in one exchange and neither side copies them. Contiguous messages, because Open MPI moves
// those with one copy (shared memory with CMA: the receiver reads the sender's buffer), but a non-contiguous datatype
// (an hindexed list of buffers) as a pipeline of fragments that advances only while the sender polls too: 807 KB in
// two values took 1-2 ms that way on this machine, and 0.2-0.3 ms there and back as two messages (mpi_bench). Every
// call is non-blocking underneath (Isend / Improbe / Irecv polled with MPI_Test, sleeping between polls, never
// yielding: at most 50 µs while bytes are on their way, 1 ms waiting for the next message on a data channel, 10 ms on
// control), so that a lost peer or a cancellation ends a wait in bounded time and an idle rank leaves the cores to ONNX
// Runtime. Heartbeats (tag 1): every rank to every other.
//
// A rank that dies: Open MPI 4.1's mpirun kills the whole job by default (the survivors get SIGTERM); with
// `mpirun --enable-recovery` it lets the others run, and the heartbeats tell them within the timeout. Open MPI 4.1 has
// no ULFM, so a job that lost a rank cannot shrink its communicator or finalize: the destructor aborts it.
#include <memory>

#include "transport.h"

namespace onnxpipe::detail {

// MPI_Init_thread(MPI_THREAD_MULTIPLE), the hosts of every rank, CUDA-awareness, heartbeats. Destroying it finalizes
// MPI once every rank got there, or calls MPI_Abort when a peer is lost.
std::unique_ptr<Transport> make_mpi_transport(double timeout_s);

}  // namespace onnxpipe::detail
