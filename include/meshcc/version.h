//  version: the release of meshcc this build is, shown by --version of
//  both programs. The wire protocol has its own number (limits.h,
//  MESHCC_PROTO_VERSION), which changes far less often.

#ifndef MESHCC_VERSION_H_INCLUDED
#define MESHCC_VERSION_H_INCLUDED

#define MESHCC_VERSION  "0.1.0"

#endif
