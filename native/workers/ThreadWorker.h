// A worker on its own OS thread, with the interface of Napi::AsyncProgressQueueWorker (Execute with a
// progress sink, OnProgress / OnOK / OnError on the JS thread), for generations.
//
// Why not libuv's pool: a running generation waits inside the SharedBatch for the other running ones, for
// as long as it runs. On the pool (4 threads unless UV_THREADPOOL_SIZE was set before Node first used it)
// concurrency would stop at 4, and every other user of the pool (fs, dns, zlib, crypto) would queue behind
// the generations. Progress and completion reach the JS thread through one ThreadSafeFunction, in order
// (every chunk before the result); the ThreadSafeFunction keeps the event loop alive while the thread runs.
#pragma once
#include <napi.h>

#include <string>
#include <thread>
#include <vector>

namespace duet {

template <typename T>
class ThreadWorker {
  public:
    class ExecutionProgress {
      public:
        void Send(const T * data, size_t count) const { worker_->send(data, count); }

      private:
        friend class ThreadWorker;
        explicit ExecutionProgress(ThreadWorker * w) : worker_(w) {}
        ThreadWorker * worker_;
    };

    ThreadWorker(Napi::Env env, const char * name) : env_(env) {
        tsfn_ = Napi::ThreadSafeFunction::New(env, Napi::Function::New(env, [](const Napi::CallbackInfo &) {}), name, 0, 1);
    }
    virtual ~ThreadWorker() = default;
    ThreadWorker(const ThreadWorker &)             = delete;
    ThreadWorker & operator=(const ThreadWorker &) = delete;

    // Starts the thread; the worker deletes itself on the JS thread after OnOK / OnError.
    void Queue() {
        std::thread([this]() {
            Execute(ExecutionProgress(this));
            Napi::ThreadSafeFunction tsfn = tsfn_;  // `this` may be gone once the call below has run
            tsfn.BlockingCall([this](Napi::Env, Napi::Function) { finish(); });
            tsfn.Release();
        }).detach();
    }

  protected:
    virtual void Execute(const ExecutionProgress & progress) = 0;
    virtual void OnProgress(const T * data, size_t count)    = 0;
    virtual void OnOK()                                      = 0;
    virtual void OnError(const Napi::Error & e)              = 0;

    void      SetError(const std::string & message) {
        error_     = message;
        has_error_ = true;
    }
    Napi::Env Env() const { return env_; }

  private:
    void send(const T * data, size_t count) {
        auto * copy = new std::vector<T>(data, data + count);
        tsfn_.BlockingCall([this, copy](Napi::Env, Napi::Function) {
            OnProgress(copy->data(), copy->size());
            delete copy;
        });
    }

    void finish() {
        {
            Napi::HandleScope scope(env_);
            if (has_error_) OnError(Napi::Error::New(env_, error_));
            else OnOK();
        }
        delete this;
    }

    Napi::Env                env_;
    Napi::ThreadSafeFunction tsfn_;
    std::string              error_;
    bool                     has_error_ = false;
};

}  // namespace duet
