-- vigil:no-transaction

    VACUUM FULL orders;
