import pymysql, time, sys, threading
res=[]
def worker(i, stateful):
    c=pymysql.connect(host='127.0.0.1',port=27071,user='sbtest',password='sbtest',database='sbtest',autocommit=True)
    cur=c.cursor()
    if stateful: cur.execute("SET @v=%d"%i)
    t0=time.time()
    while time.time()-t0<float(sys.argv[1]):
        t=time.time()
        try:
            cur.execute("SELECT 1"); cur.fetchall(); err=''
        except Exception as e: err=repr(e)[:120]
        d=time.time()-t
        if d>0.5 or err: res.append((round(t-t0,1),i,stateful,round(d,2),err))
        time.sleep(0.2)
ts=[threading.Thread(target=worker,args=(i,i%2==0)) for i in range(10)]
[t.start() for t in ts]; [t.join() for t in ts]
for r in sorted(res): print(r)
print('slow/err count', len(res))
