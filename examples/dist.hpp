// --dist in the examples: joining the mpirun job as one rank (dist::ProcessGroup::world),
// progress printed by rank 0 only. In a build without MPI the flag is refused.
#pragma once

#include <cstdio>
#include <memory>

#ifdef TG_HAVE_DIST
#include "tilegrad/dist/process_group.hpp"
#endif

namespace examples {

struct DistJob {
#ifdef TG_HAVE_DIST
  std::unique_ptr<tg::dist::ProcessGroup> group;  // null without --dist
#endif
  int rank = 0, ranks = 1;
};

// Joins the job; 0, or the exit status after a message on stderr.
inline int join_dist(const char* program, DistJob& job) {
#ifdef TG_HAVE_DIST
  (void)program;
  job.group = std::make_unique<tg::dist::ProcessGroup>(tg::dist::ProcessGroup::world());
  job.rank = job.group->rank(), job.ranks = job.group->size();
  if (job.rank != 0 && !std::freopen("/dev/null", "w", stdout)) return 1;  // progress from rank 0 only
  return 0;
#else
  (void)job;
  std::fprintf(stderr, "%s: --dist needs a build with MPI (dist/: libopenmpi-dev)\n", program);
  return 2;
#endif
}

}  // namespace examples
